"""The keyword scorer: the fraction of required / forbidden terms the output gets right."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...domain.experiment import KeywordScorerSpec
from .base import ScoreContext, Scorer, ScorerError, register


@register
class KeywordScorer(Scorer):
    """Substring checks on the output; score = satisfied checks / all checks.

    Checks: every `required_present` term appears; every term of the item's field
    `required_present_from` (a list of strings, or one string) appears; every `required_absent`
    term does not appear. Case-insensitive unless `case_sensitive`. 1.0 when an item has no
    checks (e.g. an empty list in its field); ScorerError when the item lacks the field.
    """

    type = "keyword"

    def __init__(self, spec: KeywordScorerSpec) -> None:
        super().__init__(spec)
        self._case_sensitive = spec.case_sensitive
        self._present = [self._fold(term) for term in spec.required_present]
        self._absent = [self._fold(term) for term in spec.required_absent]
        self._field = spec.required_present_from

    def _fold(self, text: str) -> str:
        return text if self._case_sensitive else text.casefold()

    def _item_terms(self, item: Mapping[str, Any]) -> list[str]:
        if self._field is None:
            return []
        if self._field not in item:
            raise ScorerError(f"the item has no field {self._field!r} (required_present_from)")
        value = item[self._field]
        if value is None:
            return []
        if isinstance(value, str):
            return [self._fold(value)]
        if isinstance(value, list | tuple) and all(
            isinstance(term, str | int | float) for term in value
        ):
            return [self._fold(str(term)) for term in value]
        raise ScorerError(
            f"item field {self._field!r} must be a string or a list of strings, "
            f"got {type(value).__name__}"
        )

    async def score(self, input: Any, output: str, context: ScoreContext) -> float:
        text = self._fold(output)
        present = self._present + self._item_terms(context.item)
        total = len(present) + len(self._absent)
        if total == 0:
            return 1.0
        satisfied = sum(term in text for term in present)
        satisfied += sum(term not in text for term in self._absent)
        return satisfied / total
