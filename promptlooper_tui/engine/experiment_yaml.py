"""Parse an experiment's YAML within limits: size, alias expansion, nesting, duplicate keys, values.

The text is first read as a stream of events (constant memory) to measure its nesting and the
size it would have with every alias expanded, so a 600-byte "billion laughs" file is refused
before anything is built from it. Only then is it composed into nodes (for line numbers and
duplicate keys) and constructed into Python values, which are checked for what JSON and the
database cannot hold: NaN, infinities, integers beyond 2^53, lone surrogates, binary values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from ..domain.errors import Issue, ValidationError
from .limits import Limits, TooExpensive

try:  # the C loader is ~10x faster; fall back where libyaml is missing
    _Base: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover
    _Base = yaml.SafeLoader

Path_ = tuple[str | int, ...]

_SURROGATE = re.compile("[\ud800-\udfff]")
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """Safe loading, with dates and times kept as the text they were written as."""


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node),
)


def parse_experiment_yaml(text: str, source: str, limits: Limits) -> ParsedExperiment:
    """Parse `text` into the document, its line index and the problems found in its values.

    Raises ValidationError when the text cannot be read as one YAML mapping, TooExpensive
    when it is larger, deeper or expands further than `limits` allow.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.experiment_bytes:
        raise TooExpensive(
            f"the text is {size:,} bytes; the limit is {limits.experiment_bytes:,} "
            "(PROMPTLOOPER_LIMIT_EXPERIMENT_BYTES)",
            source=source,
        )
    surrogate = _SURROGATE.search(text)
    if surrogate:
        line = text.count("\n", 0, surrogate.start()) + 1
        raise ValidationError(
            [
                Issue(
                    f"the text contains a lone surrogate (U+{ord(surrogate.group()):04X}); "
                    "experiment text must be valid Unicode",
                    source=source,
                    line=line,
                )
            ]
        )
    _measure(text, source, limits)
    node, data = _construct(text, source)
    walk = _NodeWalk()
    walk.visit(node, ())
    issues = [Issue(text, format_path(path), line, source) for path, line, text in walk.issues]
    for path, message in check_values(data, (), limits):
        issues.append(Issue(message, format_path(path), line_of(walk.lines, path), source))
    return ParsedExperiment(data, walk.lines, walk.text_starts, issues)


@dataclass(frozen=True)
class ParsedExperiment:
    """The document, the line of every field path, where each text value's text starts, and
    the problems found in its values."""

    data: dict[str, Any]
    lines: dict[Path_, int]
    text_starts: dict[Path_, int]
    issues: list[Issue]


def _measure(text: str, source: str, limits: Limits) -> None:
    """Refuse text nested deeper, or expanding (aliases) larger, than `limits` allow.

    Reads events only: each open collection counts the nodes and characters below it, an
    alias adds its anchor's measured size. Syntax errors are left for the composer to report
    with their line.
    """
    stack: list[list[Any]] = []  # [nodes, chars, anchor] per open collection
    sizes: dict[str, tuple[int, int]] = {}
    root = [0, 0, None]

    def add(nodes: int, chars: int) -> None:
        top = stack[-1] if stack else root
        top[0] += nodes
        top[1] += chars
        if top[0] > limits.yaml_nodes:
            raise TooExpensive(
                f"the YAML expands (with its aliases) to more than {limits.yaml_nodes:,} "
                "values (PROMPTLOOPER_LIMIT_YAML_NODES)",
                source=source,
            )
        if top[1] > limits.yaml_chars:
            raise TooExpensive(
                f"the YAML expands (with its aliases) to more than {limits.yaml_chars:,} "
                "characters of text (PROMPTLOOPER_LIMIT_YAML_CHARS)",
                source=source,
            )

    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append([1, 0, event.anchor])
                if len(stack) > limits.yaml_depth:
                    raise TooExpensive(
                        f"the YAML is nested deeper than {limits.yaml_depth} levels "
                        "(PROMPTLOOPER_LIMIT_YAML_DEPTH)",
                        source=source,
                        line=event.start_mark.line + 1,
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                nodes, chars, anchor = stack.pop()
                if anchor is not None:
                    sizes[anchor] = (nodes, chars)
                add(nodes, chars)
            elif isinstance(event, yaml.ScalarEvent):
                if event.anchor is not None:
                    sizes[event.anchor] = (1, len(event.value))
                add(1, len(event.value))
            elif isinstance(event, yaml.AliasEvent):
                if any(entry[2] == event.anchor for entry in stack):
                    raise ValidationError(
                        [
                            Issue(
                                f"alias *{event.anchor} refers to a collection that contains "
                                "it (a recursive structure)",
                                line=event.start_mark.line + 1,
                                source=source,
                            )
                        ]
                    )
                if event.anchor in sizes:
                    add(*sizes[event.anchor])
    except yaml.YAMLError:
        return


def _construct(text: str, source: str) -> tuple[yaml.Node, dict[str, Any]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ValidationError([Issue("the file is empty", source=source, line=1)])
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        line, problem = _yaml_problem(exc)
        raise ValidationError(
            [Issue(f"invalid YAML: {problem}", source=source, line=line)]
        ) from None
    except yaml.YAMLError as exc:
        raise ValidationError([Issue(f"invalid YAML: {exc}", source=source)]) from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more than 4,300 digits
        raise ValidationError(
            [Issue(f"invalid YAML value: {_first_line(exc)}", source=source)]
        ) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ValidationError(
            [Issue("expected a mapping of keys (name:, parameters:, ...)", source=source, line=1)]
        )
    return node, data


class _NodeWalk:
    """Records the line of every field path and reports duplicate keys."""

    def __init__(self) -> None:
        self.lines: dict[Path_, int] = {}
        #: Text values: the line their text starts on, so a template's own line N maps to
        #: the file's line (a `|` or `>` block starts on the line after its indicator).
        self.text_starts: dict[Path_, int] = {}
        self.issues: list[tuple[Path_, int, str]] = []
        self._checked: set[int] = set()

    def visit(self, node: yaml.Node, path: Path_) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            block = node.style in ("|", ">")
            self.text_starts.setdefault(path, node.start_mark.line + 1 + block)
        if isinstance(node, yaml.MappingNode):
            check = id(node) not in self._checked
            self._checked.add(id(node))
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value
                line = key_node.start_mark.line + 1
                if check and isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                    if key in first:
                        message = f"duplicate key {key!r} (first on line {first[key]})"
                        self.issues.append(((*path, key), line, message))
                    else:
                        first[key] = line
                if isinstance(key, str):
                    self.visit(value_node, (*path, key))
                    self.lines[(*path, key)] = line
        elif isinstance(node, yaml.SequenceNode):
            for index, child in enumerate(node.value):
                self.visit(child, (*path, index))


def check_values(value: Any, path: Path_, limits: Limits) -> list[tuple[Path_, str]]:
    """Values JSON and the database cannot hold faithfully."""
    problems: list[tuple[Path_, str]] = []
    pending: list[tuple[Any, Path_]] = [(value, path)]
    while pending:
        value, path = pending.pop()
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            if abs(value) > limits.max_integer:
                problems.append(
                    (path, f"integer too large (more than {limits.max_integer:,} in size)")
                )
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append((path, f"{value} is not allowed: use a finite number"))
        elif isinstance(value, str):
            if _SURROGATE.search(value):
                problems.append((path, "text contains a lone surrogate (invalid Unicode)"))
        elif isinstance(value, dict):
            for key, child in value.items():
                if not isinstance(key, str):
                    problems.append((path, f"key {key!r} is not text; quote it"))
                    continue
                if _SURROGATE.search(key):
                    problems.append((path, "a key contains a lone surrogate (invalid Unicode)"))
                pending.append((child, (*path, key)))
        elif isinstance(value, list | tuple):
            pending.extend((child, (*path, index)) for index, child in enumerate(value))
        else:
            problems.append(
                (path, f"unsupported value of type {type(value).__name__}; write it as text")
            )
    return problems


def line_of(lines: dict[Path_, int], path: Path_) -> int | None:
    probe = path
    while True:
        if probe in lines:
            return lines[probe]
        if not probe:
            return None
        probe = probe[:-1]


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


#: Parser contexts whose start is where the mistake is (an opening bracket or quote).
_OPENED = {
    "while parsing a flow sequence": "'[' opened here is not closed",
    "while parsing a flow mapping": "'{' opened here is not closed",
    "while scanning a quoted scalar": "the quote opened here is not closed",
}


def _yaml_problem(exc: yaml.MarkedYAMLError) -> tuple[int | None, str]:
    """Where a YAML mistake is and what it is: an unclosed bracket or quote is reported on
    the line it opened, not where the parser noticed."""
    problem = exc.problem or str(exc)
    opened = _OPENED.get(exc.context or "")
    if opened and exc.context_mark is not None:
        noticed = exc.problem_mark.line + 1 if exc.problem_mark else None
        where = f" (noticed on line {noticed}: {problem})" if noticed else f" ({problem})"
        return exc.context_mark.line + 1, opened + where
    mark = exc.problem_mark or exc.context_mark
    return (mark.line + 1 if mark else None), problem
