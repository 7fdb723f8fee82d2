"""An experiment file's text with one more prompt, chosen first, and everything else as the
person wrote it: comments, key order, quoting and flow or block styles (ruamel.yaml's round
trip). Only `evolve apply` (and its API and MCP twins) loads this module: ruamel.yaml costs
start-up time no other command should pay."""

from __future__ import annotations

import difflib
import io
import itertools
import json
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from ..domain.errors import BadInput

#: Indentation layouts tried, as (mapping, sequence, dash offset): the one that writes the
#: unchanged document back byte for byte is the file's own (`key:` then `  - item` is 2, 4, 2).
_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 4, 0), (4, 6, 4), (3, 3, 1), (2, 3, 1))
#: Wide enough that no line the person wrote is folded.
_NO_FOLDING = 1 << 16
#: Line widths tried as a file's own: none, and the 80 that PyYAML and ruamel fold at (a file
#: one of them wrote has its long values folded there).
_WIDTHS = (_NO_FOLDING, 80)


def with_prompt(
    text: str,
    *,
    parameter: str,
    name: str,
    template: str,
    note: str,
    dataset_from: Path | None = None,
    dataset_to: Path | None = None,
) -> str:
    """`text` with prompt `name` (`template`) first under `prompts:`, after a comment `note`,
    and first among the values of parameter `parameter` (a single value becomes `name`).

    With `dataset_from` and `dataset_to` (folders), a relative `dataset: {file: ...}` that
    resolved against the first, a folder other than the second, becomes its absolute path:
    the text still finds it once written in the second. BadInput when the
    text has no `prompts:` mapping or no such parameter."""
    document = _parsed(_round_trip(*_LAYOUTS[0]), text)
    prompts, parameters = document.get("prompts"), document.get("parameters")
    if not isinstance(prompts, CommentedMap) or not isinstance(parameters, CommentedMap):
        raise BadInput("the experiment's text has no `prompts:` or `parameters:` mapping")
    if parameter not in parameters:
        raise BadInput(f"the experiment's text has no parameter {parameter!r}")
    expected = _plain(document)
    expected["prompts"] = {name: template, **expected["prompts"]}
    expected_values = expected["parameters"][parameter]
    expected["parameters"][parameter] = (
        [name, *expected_values] if isinstance(expected_values, list) else name
    )
    moved = _moved_dataset(document.get("dataset"), dataset_from, dataset_to)
    if moved is not None:
        expected["dataset"]["file"] = moved

    # Edited in place, every other byte is the person's; where a style is not one edited in
    # place (a flow `prompts:` mapping...), the whole document is written back instead.
    spliced = _spliced(text, document, parameter, name, template, note, moved)
    if spliced is not None and YAML(typ="safe", pure=True).load(spliced) == expected:
        return spliced

    yaml, document = _load(text)
    prompts, parameters = document["prompts"], document["parameters"]
    block = LiteralScalarString(template) if "\n" in template else template
    column = _indent(prompts)
    prompts.insert(0, name, block)
    prompts.yaml_set_comment_before_after_key(name, before=_comment(note), indent=column)
    values = parameters[parameter]
    if isinstance(values, CommentedSeq):
        values.insert(0, name)
    else:
        parameters[parameter] = name
    if moved is not None:
        document["dataset"]["file"] = moved

    written = _dump(yaml, document)
    if YAML(typ="safe", pure=True).load(written) != expected:
        # The round trip is an editor, not a parser the loader trusts: never store a text
        # that does not say what the new version's spec says.
        raise BadInput("could not rewrite the experiment's text faithfully; add the prompt by hand")
    return written


def _load(text: str) -> tuple[YAML, CommentedMap]:
    """The document, and a round-trip YAML that writes it back in the file's indentation."""
    best: tuple[int, YAML] | None = None
    document: Any = None
    for layout, width in itertools.product(_LAYOUTS, _WIDTHS):
        yaml = _round_trip(*layout, width=width)
        document = _parsed(yaml, text)
        again = _dump(yaml, document)
        if again == text:
            return yaml, document
        changed = _changed_lines(text, again)
        if best is None or changed < best[0]:
            best = (changed, yaml)
    assert best is not None
    return best[1], best[1].load(text)


def _parsed(yaml: YAML, text: str) -> CommentedMap:
    try:
        document = yaml.load(text)
    except YAMLError as exc:
        raise BadInput(f"the experiment's text is not YAML: {exc}") from None
    if not isinstance(document, CommentedMap):
        raise BadInput("the experiment's text is not a YAML mapping")
    return document


def _round_trip(mapping: int, sequence: int, offset: int, *, width: int = _NO_FOLDING) -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = width
    yaml.brace_single_entry_mapping_in_flow_sequence = True  # `[null, {type: json_object}]`
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _dump(yaml: YAML, document: Any) -> str:
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _changed_lines(before: str, after: str) -> int:
    matcher = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(), False)
    same = sum(block.size for block in matcher.get_matching_blocks())
    return max(len(before.splitlines()), len(after.splitlines())) - same


def _plain(document: Any) -> Any:
    """The document as plain dicts, lists and scalars (what the loader would read)."""
    return YAML(typ="safe", pure=True).load(_dump(_round_trip(2, 4, 2), document))


def _indent(mapping: CommentedMap) -> int:
    """The column of the mapping's keys, for a comment above a new first key."""
    first = next(iter(mapping), None)
    return int(mapping.lc.key(first)[1]) if first is not None else 2


def _comment(note: str) -> str:
    """`note` as comment lines: printable characters only, so nothing ends the comment."""
    lines = ("".join(c for c in line if c.isprintable()).strip() for line in note.splitlines())
    return "\n".join(line for line in lines if line)


def _moved_dataset(dataset: Any, source: Path | None, target: Path | None) -> str | None:
    """The dataset file's absolute path when it is relative and `target` is not the folder
    `source` it resolved in; else None (nothing to change)."""
    if source is None or target is None or not isinstance(dataset, CommentedMap):
        return None
    file = dataset.get("file")
    if not isinstance(file, str) or Path(file).is_absolute():
        return None
    if source.resolve() == target.resolve():
        return None
    return str(source.resolve() / file)


#: An edit of the text: (line, start column, end column, replacement); an insertion of whole
#: lines is at column 0 of the line they go before.
_Edit = tuple[int, int, int, str]
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _spliced(
    text: str,
    document: CommentedMap,
    parameter: str,
    name: str,
    template: str,
    note: str,
    moved: str | None,
) -> str | None:
    """`text` with the prompt, the parameter's new first value and a moved dataset path
    edited in at the places ruamel read them from, or None where a style is not one edited in
    place (the caller then writes the whole document back)."""
    lines = text.splitlines(keepends=True)
    prompts = document["prompts"]
    if not prompts or prompts.fa.flow_style():
        return None
    line, column = prompts.lc.key(next(iter(prompts)))
    edits: list[_Edit] = [(line, 0, 0, _entry(name, template, note, column))]
    value = _value_edit(lines, document["parameters"], parameter, name)
    if value is None:
        return None
    edits.append(value)
    if moved is not None:
        dataset = document["dataset"]
        at_line, at = dataset.lc.value("file")
        end = _scalar_end(lines[at_line], at, flow=bool(dataset.fa.flow_style()))
        if end is None:
            return None
        edits.append((at_line, at, end, _quoted_like(lines[at_line][at], moved, plain=False)))
    for at_line, start, end, new in sorted(edits, reverse=True):
        lines[at_line] = lines[at_line][:start] + new + lines[at_line][end:]
    return "".join(lines)


def _value_edit(lines: list[str], parameters: CommentedMap, key: str, name: str) -> _Edit | None:
    """`name` first among parameter `key`'s values, or in place of its single value."""
    scalar = name if _PLAIN_NAME.match(name) else json.dumps(name)
    values = parameters[key]
    line, column = parameters.lc.value(key)
    if isinstance(values, CommentedSeq):
        if not values:
            return None
        if values.fa.flow_style():
            if lines[line][column : column + 1] != "[":
                return None
            return line, column + 1, column + 1, f"{scalar}, "
        item_line, item_column = values.lc.item(0)
        prefix = lines[item_line][:item_column]
        return (item_line, 0, 0, f"{prefix}{scalar}\n") if prefix.strip() == "-" else None
    end = _scalar_end(lines[line], column, flow=False)
    return None if end is None else (line, column, end, _quoted_like(lines[line][column], name))


def _quoted_like(first: str, value: str, *, plain: bool = True) -> str:
    """`value` quoted as the scalar it replaces was (`first` is that one's first character);
    plain only when it was and `value` may be (`plain`)."""
    if first == "'":
        return "'" + value.replace("'", "''") + "'"
    if first == '"' or not plain or not _PLAIN_NAME.match(value):
        return json.dumps(value)
    return value


def _scalar_end(line: str, start: int, *, flow: bool) -> int | None:
    """Where the scalar starting at `start` of `line` ends (a quoted one after its closing
    quote, a plain one before a comment, or in a flow collection before `,` `}` `]`)."""
    quote = line[start : start + 1]
    if quote in ("'", '"'):
        match = (_SINGLE_QUOTED if quote == "'" else _DOUBLE_QUOTED).match(line, start)
        return match.end() if match else None
    match = (_PLAIN_IN_FLOW if flow else _PLAIN).match(line, start)
    return start + len(match.group().rstrip()) if match else None


_SINGLE_QUOTED = re.compile(r"'(?:[^'\n]|'')*'")
_DOUBLE_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_PLAIN = re.compile(r"(?:[^#\r\n]|(?<! )#)+")
_PLAIN_IN_FLOW = re.compile(r"(?:[^#,\]}\r\n]|(?<! )#)+")


def _entry(name: str, template: str, note: str, column: int) -> str:
    """The lines of prompt `name`, after its comment, at the prompts' `column`."""
    value = LiteralScalarString(template) if "\n" in template else template
    entry = _dump(_round_trip(2, 2, 0), CommentedMap({name: value}))
    pad = " " * column
    comment = "".join(f"{pad}# {line}\n" for line in _comment(note).splitlines())
    return comment + "".join(
        pad + line if line.strip() else line for line in entry.splitlines(True)
    )
