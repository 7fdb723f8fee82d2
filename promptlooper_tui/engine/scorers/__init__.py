"""Scorers: each turns one run's output into a score in [0, 1]. Build them with build_scorer."""

from .base import ScoreContext, Scorer, ScorerError, build_scorer, register, registered_types
from .embedding import EmbeddingScorer
from .format import FormatScorer, extract_json
from .judge import LlmJudgeScorer, parse_rating
from .keyword import KeywordScorer

__all__ = [
    "EmbeddingScorer",
    "FormatScorer",
    "KeywordScorer",
    "LlmJudgeScorer",
    "ScoreContext",
    "Scorer",
    "ScorerError",
    "build_scorer",
    "extract_json",
    "parse_rating",
    "register",
    "registered_types",
]
