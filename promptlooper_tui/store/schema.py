"""The database schema as forward migrations. Append new migrations; never edit old ones."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the engine's tables.
    """
    CREATE TABLE endpoints (
        name TEXT PRIMARY KEY,
        base_url TEXT NOT NULL,
        api_key_env TEXT,
        api_key_encrypted BLOB,
        pricing TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    CREATE TABLE experiments (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    CREATE TABLE experiment_versions (
        experiment_id TEXT NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        spec_yaml TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        PRIMARY KEY (experiment_id, version)
    );
    CREATE TABLE sweeps (
        id TEXT PRIMARY KEY,
        experiment_id TEXT NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
        experiment_version INTEGER NOT NULL,
        settings TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        owner_pid INTEGER,
        planned_runs INTEGER NOT NULL DEFAULT 0,
        tokens_in INTEGER NOT NULL DEFAULT 0,
        tokens_out INTEGER NOT NULL DEFAULT 0,
        cost REAL NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX sweeps_by_experiment ON sweeps (experiment_id, created_at);
    CREATE TABLE sweep_batches (
        sweep_id TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        plan TEXT NOT NULL,
        PRIMARY KEY (sweep_id, number)
    ) WITHOUT ROWID;
    CREATE TABLE configs (
        id INTEGER PRIMARY KEY,
        sweep_id TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        params TEXT NOT NULL,
        dropped INTEGER NOT NULL DEFAULT 0,
        UNIQUE (sweep_id, key)
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        sweep_id TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
        config_id INTEGER NOT NULL REFERENCES configs(id) ON DELETE CASCADE,
        experiment_id TEXT NOT NULL,
        item_index INTEGER NOT NULL,
        repeat INTEGER NOT NULL,
        status TEXT NOT NULL,
        score REAL,
        error TEXT,
        tokens_in INTEGER NOT NULL DEFAULT 0,
        tokens_out INTEGER NOT NULL DEFAULT 0,
        cost REAL NOT NULL DEFAULT 0,
        latency_ms REAL NOT NULL DEFAULT 0,
        calls INTEGER NOT NULL DEFAULT 0,
        cached_calls INTEGER NOT NULL DEFAULT 0,
        finished_at TEXT NOT NULL,
        UNIQUE (sweep_id, config_id, item_index, repeat)
    );
    CREATE INDEX runs_by_config ON runs (config_id, item_index);
    CREATE INDEX runs_by_experiment ON runs (experiment_id, finished_at);
    CREATE INDEX runs_by_sweep_status ON runs (sweep_id, status);
    CREATE TABLE stage_results (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        stage_index INTEGER NOT NULL,
        name TEXT NOT NULL,
        messages TEXT NOT NULL,
        output TEXT,
        tokens_in INTEGER NOT NULL DEFAULT 0,
        tokens_out INTEGER NOT NULL DEFAULT 0,
        latency_ms REAL NOT NULL DEFAULT 0,
        cached INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        PRIMARY KEY (run_id, stage_index)
    ) WITHOUT ROWID;
    CREATE TABLE scores (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        scorer TEXT NOT NULL,
        kind TEXT NOT NULL,
        value REAL,
        weight REAL NOT NULL,
        error TEXT,
        note TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX scores_by_run ON scores (run_id);
    CREATE TABLE cache (
        key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        tokens_in INTEGER NOT NULL DEFAULT 0,
        tokens_out INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE cache_counters (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        hits INTEGER NOT NULL DEFAULT 0,
        misses INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO cache_counters (id, hits, misses) VALUES (1, 0, 0);
    """,
    # 2: webhooks and their delivery log (one row per attempt).
    """
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        events TEXT NOT NULL DEFAULT '[]',
        secret_encrypted BLOB,
        created_at TEXT NOT NULL
    );
    CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY,
        webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        event_seq INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        status_code INTEGER,
        latency_ms REAL NOT NULL DEFAULT 0,
        error TEXT,
        delivered INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
    """,
    # 3: a covering index for the leaderboard's passes (it replaces runs_by_sweep_status, its
    # prefix): 100,000 runs rank without touching the table's rows.
    """
    DROP INDEX runs_by_sweep_status;
    CREATE INDEX runs_for_ranking ON runs (
        sweep_id, status, config_id, item_index, score, tokens_in, tokens_out, cost, latency_ms
    );
    """,
    # 4: per-endpoint bounds on what one request may cost (NULL: the documented default).
    """
    ALTER TABLE endpoints ADD COLUMN max_response_mb REAL;
    ALTER TABLE endpoints ADD COLUMN deadline_s REAL;
    ALTER TABLE endpoints ADD COLUMN idle_timeout_s REAL;
    ALTER TABLE endpoints ADD COLUMN rate_limit_wait_s REAL;
    """,
    # 5: claims on LLM calls in flight, so that processes sharing a database make each call
    # once: an owner (host:pid:nonce) holds a key until its entry is cached or the lease ends.
    """
    CREATE TABLE cache_claims (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 6: what the endpoint said beyond the text: why each stage's answer ended and what in it
    # was ignored (a JSON list), whether a run holds an answer cut at max_tokens, and how many
    # 429 answers a sweep has met.
    """
    ALTER TABLE stage_results ADD COLUMN finish_reason TEXT;
    ALTER TABLE stage_results ADD COLUMN warnings TEXT;
    ALTER TABLE runs ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sweeps ADD COLUMN responses_429 INTEGER NOT NULL DEFAULT 0;
    """,
    # 7: honest numbers. A person's new rating of a run supersedes their earlier one (kept,
    # not counted); runs and sweeps name the models their cost leaves out (no price: a JSON
    # list, NULL when every call was priced); a sweep keeps its LLM calls over all its resumes
    # and its planned total. The ranking index also covers what the experiment-wide leaderboard
    # reads (repeat and finish time, to take the latest run of an observation; truncation and
    # pricing, counted per config); partial indexes find failed scorers and human ratings.
    """
    ALTER TABLE scores ADD COLUMN superseded_at TEXT;
    ALTER TABLE runs ADD COLUMN unpriced TEXT;
    ALTER TABLE sweeps ADD COLUMN unpriced TEXT;
    ALTER TABLE sweeps ADD COLUMN calls INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sweeps ADD COLUMN cache_hits INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sweeps ADD COLUMN expected_runs INTEGER;
    UPDATE sweeps SET
        calls = (SELECT coalesce(sum(calls), 0) FROM runs WHERE runs.sweep_id = sweeps.id),
        cache_hits = (SELECT coalesce(sum(cached_calls), 0) FROM runs
                      WHERE runs.sweep_id = sweeps.id);
    UPDATE scores SET superseded_at = created_at
    WHERE kind = 'human' AND id < (SELECT max(later.id) FROM scores later
                                   WHERE later.run_id = scores.run_id
                                   AND later.scorer = scores.scorer AND later.kind = 'human');
    UPDATE runs SET score = (SELECT sum(value * weight) / sum(weight) FROM scores
                             WHERE run_id = runs.id AND value IS NOT NULL AND weight > 0
                             AND superseded_at IS NULL)
    WHERE id IN (SELECT run_id FROM scores WHERE superseded_at IS NOT NULL);
    DROP INDEX runs_for_ranking;
    CREATE INDEX runs_for_ranking ON runs (
        sweep_id, status, config_id, item_index, score, tokens_in, tokens_out, cost, latency_ms,
        repeat, finished_at, truncated, unpriced
    );
    CREATE INDEX scores_failed ON scores (run_id) WHERE error IS NOT NULL;
    CREATE INDEX scores_human ON scores (run_id) WHERE kind = 'human';
    """,
    # 8: keyset pages of runs, newest first (finished_at, id), of an experiment, of a sweep or
    # of all; status and score ride along, so a filtered page and its count read the index
    # alone. The experiment's index replaces runs_by_experiment, its prefix.
    """
    DROP INDEX runs_by_experiment;
    CREATE INDEX runs_by_experiment ON runs (experiment_id, finished_at, id, status, score);
    CREATE INDEX runs_by_sweep ON runs (sweep_id, finished_at, id, status, score);
    CREATE INDEX runs_newest ON runs (finished_at, id, status, score);
    """,
    # 9: several processes on one store (DESIGN §10). Events that other processes relay to
    # their front-ends (a row holds the events of one step of a process's loop, as a JSON
    # array); the runs of stored batches as units of work any process may claim (owner and
    # lease); who coordinates each sweep; the workers present; and a check value of the
    # secret the store's keys are encrypted with.
    """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        origin TEXT NOT NULL,
        events TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE work_units (
        run_id TEXT PRIMARY KEY,
        sweep_id TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
        batch INTEGER NOT NULL,
        config_id INTEGER NOT NULL REFERENCES configs(id) ON DELETE CASCADE,
        item_index INTEGER NOT NULL,
        repeat INTEGER NOT NULL,
        retry INTEGER NOT NULL DEFAULT 0,
        owner TEXT,
        lease_expires REAL
    ) WITHOUT ROWID;
    CREATE INDEX work_units_of_batch ON work_units (sweep_id, batch, item_index);
    CREATE TABLE sweep_coordinators (
        sweep_id TEXT PRIMARY KEY REFERENCES sweeps(id) ON DELETE CASCADE,
        owner TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE workers (
        owner TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        seen_at REAL NOT NULL,
        sweep_id TEXT,
        runs_done INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE store_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 10: why racing stopped running a config (eliminated or equivalent, at which item count,
    # against which leader, the p-value), as JSON; NULL for a config that ran to the end.
    """
    ALTER TABLE configs ADD COLUMN decision TEXT;
    """,
    # 11: evolve. The items a sweep holds out (JSON list; NULL unless evolve), each
    # generation's proposer call (what it cost; an answer that could not be read, why) and
    # what it proposed, accepted with the prompt name it runs under, or rejected and why.
    """
    ALTER TABLE sweeps ADD COLUMN holdout TEXT;
    CREATE TABLE evolve_generations (
        sweep_id TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
        generation INTEGER NOT NULL,
        model TEXT NOT NULL,
        tokens_in INTEGER NOT NULL,
        tokens_out INTEGER NOT NULL,
        paid_tokens INTEGER NOT NULL,
        cached INTEGER NOT NULL,
        error TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (sweep_id, generation)
    ) WITHOUT ROWID;
    CREATE TABLE prompt_proposals (
        sweep_id TEXT NOT NULL,
        generation INTEGER NOT NULL,
        position INTEGER NOT NULL,
        name TEXT,
        template TEXT NOT NULL,
        parents TEXT NOT NULL,
        rationale TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        PRIMARY KEY (sweep_id, generation, position),
        FOREIGN KEY (sweep_id, generation)
            REFERENCES evolve_generations(sweep_id, generation) ON DELETE CASCADE
    ) WITHOUT ROWID;
    """,
]
