"""A token count without a tokenizer: budgets, plans, length scoring, simulated usage."""

from __future__ import annotations


def estimate_tokens(text: str) -> int:
    """About 4 tokens per 3 words (typical of English with BPE tokenizers): ceil(words * 4 / 3).

    Deterministic and cheap; 0 for empty or whitespace-only text.
    """
    words = len(text.split())
    # Integer ceiling division: exact, unlike math.ceil on a float quotient.
    return -(-words * 4 // 3)
