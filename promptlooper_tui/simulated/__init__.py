"""A deterministic, OpenAI-compatible fake LLM server for the quick start, tests and benchmarks.

Replies are a pure function of the request body (same body => same bytes), yet they vary with
the model name, temperature, seed and prompt the way real models do, so sweeps rank
configurations meaningfully: bigger models mention more of the question's keywords, keep JSON
valid and avoid "As an AI language model". Latency, API-key checks and faults (500, 429,
malformed JSON, cut streams) are switched on with `SimulatorOptions`; the `/_sim/*` routes expose
request counters and a log so tests can count the calls that reached the server.

Importing the package or its `options` is cheap (no web server). `options`: how it behaves;
`replies`: the answer to a chat body, written by `ordinary_answers`, `judge_answers`,
`json_answers` or `proposer_answers` (for evolve) from what `prompt` reads, `craft` saying how
much the prompt's wording helps; `embeddings`; `state`: its counters and log; `app`:
the HTTP routes; `server`: serving it in the current event loop, or until signalled.
"""
