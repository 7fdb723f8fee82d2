"""Deterministic embeddings: texts that share words get vectors with a high cosine."""

from __future__ import annotations

import math
import zlib
from typing import Any

from .prompt import LOWER_TOKEN_RE, STOPWORDS

#: Length of every embedding vector.
EMBEDDING_DIMS = 256
_WORD_WEIGHT = 1.0
_TRIGRAM_WEIGHT = 0.35
_STOPWORD_TRIGRAM_WEIGHT = 0.1


def simulate_embedding(text: str) -> list[float]:
    """A deterministic, L2-normalised EMBEDDING_DIMS vector from hashed words and trigrams.

    Equal texts give the same list; texts sharing words score a high cosine, unrelated ones low.
    """
    vector = [0.0] * EMBEDDING_DIMS
    for word in LOWER_TOKEN_RE.findall(text.lower()):
        stopword = word in STOPWORDS
        if not stopword:
            _add_feature(vector, "w:" + word, _WORD_WEIGHT)
        padded = f"#{word}#"
        weight = _STOPWORD_TRIGRAM_WEIGHT if stopword else _TRIGRAM_WEIGHT
        for start in range(len(padded) - 2):
            _add_feature(vector, padded[start : start + 3], weight)
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0.0:
        vector[0] = 1.0  # empty text still needs a unit vector
        return vector
    return [value / norm for value in vector]


def _add_feature(vector: list[float], feature: str, weight: float) -> None:
    # crc32, not hash(): Python's str hash is randomised per process.
    digest = zlib.crc32(feature.encode())
    vector[digest % EMBEDDING_DIMS] += weight if digest & 0x100 else -weight


def embedding_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    texts = body.get("input")
    if isinstance(texts, str):
        return None
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return "'input' must be a string or a non-empty array of strings"
    return None
