"""Scorers: each turns one run's output into a score in [0, 1]. Build them with build_scorer."""

from .base import ScoreContext, Scorer, ScorerError, build_scorer, register, registered_types
from .format import FormatScorer, extract_json
from .keyword import KeywordScorer

__all__ = [
    "FormatScorer",
    "KeywordScorer",
    "ScoreContext",
    "Scorer",
    "ScorerError",
    "build_scorer",
    "extract_json",
    "register",
    "registered_types",
]
