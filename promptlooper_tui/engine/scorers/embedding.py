"""The embedding scorer: how close the output's meaning is to the item's reference text."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ...domain.experiment import EmbeddingScorerSpec
from .base import ScoreContext, Scorer, ScorerError, register


@register
class EmbeddingScorer(Scorer):
    """Cosine similarity of the output's and the reference's embeddings, mapped to [0, 1].

    Both texts are embedded in one call to `model` on `endpoint` (None: the experiment's
    endpoint), which goes through the call cache and is charged to the run. The reference is
    the item's `reference_field` (default "reference") and must be a non-blank string.

    Score = (cos + 1) / 2, so identical meaning (cos 1) scores 1.0 (equal texts exactly 1.0),
    unrelated texts (cos 0) 0.5 and opposite vectors (cos -1) 0.0. A blank output scores 0.0
    without a call: endpoints reject empty input, and an empty answer matches no reference.

    Raises ScorerError when the run has no LLM access, the reference is missing or blank, or
    the endpoint returns unusable vectors (wrong count, different lengths, zero or non-finite).
    """

    type = "embedding"
    spends_tokens = True

    def __init__(self, spec: EmbeddingScorerSpec) -> None:
        super().__init__(spec)
        self._field = spec.reference_field

    def _reference(self, item: Mapping[str, Any]) -> str:
        value = item.get(self._field)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ScorerError(
                f"the item has no reference text in field {self._field!r} (reference_field)"
            )
        if not isinstance(value, str):
            raise ScorerError(
                f"item field {self._field!r} must be a string, got {type(value).__name__}"
            )
        return value

    async def score(self, input: Any, output: str, context: ScoreContext) -> float:
        if context.llm is None:
            raise ScorerError("the embedding scorer needs LLM access")
        reference = self._reference(context.item)
        if not output.strip():
            return 0.0
        vectors = await context.llm.embed(self.spec.endpoint, self.spec.model, [output, reference])
        if len(vectors) != 2:
            raise ScorerError(f"expected 2 embeddings from {self.spec.model}, got {len(vectors)}")
        return (cosine(vectors[0], vectors[1]) + 1.0) / 2.0


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors, in [-1, 1]; exactly 1.0 for equal vectors.

    Raises ScorerError for vectors of different (or zero) length, a zero vector, or values
    that are not finite numbers.
    """
    if len(a) != len(b):
        raise ScorerError(f"embeddings have different lengths ({len(a)} and {len(b)})")
    if not a:
        raise ScorerError("the endpoint returned empty embeddings")
    if not all(_finite(x) for x in a) or not all(_finite(x) for x in b):
        raise ScorerError("an embedding holds values that are not finite numbers")
    aa = sum(x * x for x in a)
    bb = sum(y * y for y in b)
    if aa == 0.0 or bb == 0.0:
        which = "output" if aa == 0.0 else "reference"
        raise ScorerError(f"the embedding of the {which} is a zero vector")
    # sqrt(aa * bb) rather than sqrt(aa) * sqrt(bb): for equal vectors dot == aa == bb and
    # sqrt(aa * aa) == aa exactly, so equal texts score exactly 1.0.
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return max(-1.0, min(1.0, dot / math.sqrt(aa * bb)))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
