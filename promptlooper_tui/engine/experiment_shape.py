"""Pass 1 of validation: the document's shape, as pydantic checks it, told in the user's words
at the path where the user wrote it (unknown keys with a suggestion, missing keys, values that
fit no branch of a union said once, with what each branch expected).
"""

from __future__ import annotations

import difflib
import json
from typing import Any

import pydantic

from ..domain.experiment import (
    DatasetFile,
    EmbeddingScorerSpec,
    ExperimentSpec,
    FormatScorerSpec,
    InlineEndpoint,
    KeywordScorerSpec,
    LlmJudgeScorerSpec,
    StageSpec,
    SweepSettings,
)
from .experiment_yaml import Path_, format_path

_SCORER_TYPES = "keyword, format, embedding, llm_judge, human"


def shape_issues(data: dict[str, Any]) -> list[tuple[Path_, str]]:
    """Where the document `data` does not have an experiment's shape, and what is wrong there."""
    try:
        ExperimentSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        return _explain_all(data, exc.errors())
    return []


def _explain_all(data: dict[str, Any], errors: list[Any]) -> list[tuple[Path_, str]]:
    issues: list[tuple[Path_, str]] = []
    seen: set[tuple[str, str]] = set()
    #: Errors of union branches that do not fit the value, by the value's path.
    unfitting: dict[Path_, list[Any]] = {}
    for error in errors:
        reported = _explain(data, error)
        if reported is None:
            unfitting.setdefault(_data_path(data, tuple(error["loc"]))[0], []).append(error)
            continue
        path, message = reported
        if (format_path(path), message) not in seen:
            seen.add((format_path(path), message))
            issues.append((path, message))
    # A value that fits no branch at all (a list where text or a mapping is expected)
    # would otherwise go unreported: say what each branch expected.
    reported_paths = {path for path, _ in seen}
    for path, branch_errors in unfitting.items():
        if not any(_within(format_path(path), other) for other in reported_paths):
            expected = " or ".join(
                dict.fromkeys(str(e["msg"]).removeprefix("Input should be ") for e in branch_errors)
            )
            issues.append(
                (path, f"expected {expected} (got {_short(branch_errors[0].get('input'))})")
            )
            reported_paths.add(format_path(path))
    return issues


def _explain(data: dict[str, Any], error: Any) -> tuple[Path_, str] | None:
    path, plausible = _data_path(data, tuple(error["loc"]))
    if not plausible:
        return None
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(path[-1])
        return path, f"unknown key {key!r}" + _suggest(key, _known_keys(data, path[:-1]))
    if kind == "missing":
        return path, f"required key {str(path[-1])!r} is missing"
    if kind == "union_tag_invalid":
        return (*path, "type"), f"unknown scorer type; expected one of {_SCORER_TYPES}"
    if kind == "union_tag_not_found":
        return path, f"scorer needs a `type:`; one of {_SCORER_TYPES}"
    if kind == "too_short" and isinstance(error.get("input"), list):
        return path, "an empty list; give at least one"
    message = str(error["msg"]).removeprefix("Value error, ")
    return path, f"{message} (got {_short(error.get('input'))})"


def _data_path(data: dict[str, Any], loc: Path_) -> tuple[Path_, bool]:
    """Strip pydantic's union-branch tags from `loc`; say if the branch fits the data."""
    path: list[str | int] = []
    node: Any = data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if _has_child(node, part):
            path.append(part)
            node = node[part]
        elif isinstance(part, str) and _is_branch_tag(part) and not (last and part in _MODEL_KEYS):
            if not _branch_fits(part, node):
                return tuple(path), False
        else:
            path.append(part)
    return tuple(path), True


def _known_keys(data: dict[str, Any], parent: Path_) -> list[str]:
    model = _model_at(parent, data)
    return list(model.model_fields) if model else []


def _within(parent: str, path: str) -> bool:
    """Whether formatted `path` is `parent` or inside it."""
    return not parent or path == parent or path.startswith((f"{parent}.", f"{parent}["))


def _has_child(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and part < len(node)


def _is_branch_tag(part: str) -> bool:
    return part in _BRANCH_MODELS or part.startswith(("list[", "dict[")) or part in _SCALAR_TAGS


#: Keys of our models that could be mistaken for pydantic's union-branch tags.
_MODEL_KEYS = {"format", "embedding", "keyword"}
_SCALAR_TAGS = {
    "str",
    "int",
    "float",
    "bool",
    "none",
    "literal['grid','random','guided','racing','evolve']",
}
_BRANCH_MODELS = {
    "InlineEndpoint": InlineEndpoint,
    "DatasetFile": DatasetFile,
    "keyword": KeywordScorerSpec,
    "format": FormatScorerSpec,
    "embedding": EmbeddingScorerSpec,
    "llm_judge": LlmJudgeScorerSpec,
}


def _branch_fits(tag: str, node: Any) -> bool:
    if tag.startswith("list["):
        return isinstance(node, list)
    if tag.startswith("dict[") or tag in _BRANCH_MODELS:
        return isinstance(node, dict)
    return not isinstance(node, dict | list)


def _model_at(path: Path_, data: dict[str, Any]) -> type[pydantic.BaseModel] | None:
    if path == ():
        return ExperimentSpec
    if path == ("sweep",):
        return SweepSettings
    if path in (("endpoint",),):
        return InlineEndpoint
    if path == ("dataset",):
        return DatasetFile
    if len(path) == 2 and path[0] == "pipeline":
        return StageSpec
    if len(path) == 2 and path[0] == "scorers" and isinstance(path[1], int):
        try:
            kind = data["scorers"][path[1]].get("type")
        except (KeyError, IndexError, AttributeError):
            return None
        return _BRANCH_MODELS.get(str(kind))
    return None


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of: {', '.join(known)})" if known else ""


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
