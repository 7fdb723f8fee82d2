"""`with_prompt`, the edit `evolve apply` makes to an experiment file: one prompt added and
chosen first, and every other line as the person wrote it."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.engine.experiment_rewrite import with_prompt
from promptlooper_tui.engine.loader import load_experiment_file

SAMPLES = Path(__file__).resolve().parents[2] / "sample_experiments"
TEMPLATE = "Use the exact names.\nChange: {{ item.input.change }}\n"
WITH_PROMPTS = [
    path for path in sorted(SAMPLES.glob("*.yaml")) if load_experiment_file(path).spec.prompts
]


def changes(before: str, after: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The lines `after` adds to `before`, and the (old, new) lines it replaces one for one."""
    added: list[str] = []
    replaced: list[tuple[str, str]] = []
    old, new = before.splitlines(), after.splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, False).get_opcodes():
        if tag == "insert":
            added += new[j1:j2]
        elif tag == "replace":
            assert i2 - i1 == j2 - j1 == 1, (old[i1:i2], new[j1:j2])
            replaced.append((old[i1], new[j1]))
        else:
            assert tag == "equal", (tag, old[i1:i2])
    return added, replaced


@pytest.mark.parametrize("path", WITH_PROMPTS, ids=lambda path: path.name)
def test_each_sample_keeps_every_line_but_the_prompt_parameter(path: Path) -> None:
    text = path.read_text()
    parameter = "prompt"  # in every sample that has prompts

    written = with_prompt(
        text, parameter=parameter, name="g2.1", template=TEMPLATE, note="g2.1: from a sweep"
    )

    added, replaced = changes(text, written)
    assert added == [
        "  # g2.1: from a sweep",
        "  g2.1: |",
        "    Use the exact names.",
        "    Change: {{ item.input.change }}",
    ]
    [(old, new)] = replaced
    assert old.split(":")[0] == new.split(":")[0] == f"  {parameter}"
    document, original = yaml.safe_load(written), yaml.safe_load(text)
    assert list(document["prompts"]) == ["g2.1", *original["prompts"]]
    assert document["prompts"]["g2.1"] == TEMPLATE
    assert document["parameters"][parameter] == ["g2.1", *original["parameters"][parameter]]


def test_a_file_of_its_own_layout_keeps_it_and_a_single_prompt_becomes_the_new_one() -> None:
    text = (
        "name: four   # indented by four\n"
        "parameters:\n"
        "    prompt: 'short'\n"
        "    stop:\n"
        "    -   END\n"
        "prompts:\n"
        '    short: "Say it {{ item.input.x }}"\n'
        "pipeline:\n"
        "-   {name: a, user: '{{ prompts[params.prompt] }}'}\n"
    )

    written = with_prompt(text, parameter="prompt", name="g1.1", template="Hi", note="n")

    added, replaced = changes(text, written)
    assert added == ["    # n", "    g1.1: Hi"]
    assert replaced == [("    prompt: 'short'", "    prompt: 'g1.1'")]  # its quotes kept


def test_a_rationale_cannot_leave_its_comment() -> None:
    text = (SAMPLES / "evolve.yaml").read_text()
    hostile = "fine\nprompts: {}\r\x85\u2028sweep: null\x00\x1b[2J\n# ok"

    written = with_prompt(text, parameter="prompt", name="g1.1", template="Hi", note=hostile)

    assert yaml.safe_load(written)["sweep"] == yaml.safe_load(text)["sweep"]
    added, _ = changes(text, written)
    assert all(line.lstrip().startswith("#") for line in added[:-1]), added
    assert "\x1b" not in written and "\x00" not in written


def test_a_relative_dataset_is_made_absolute_for_a_file_written_elsewhere(tmp_path: Path) -> None:
    text = (SAMPLES / "evolve.yaml").read_text()

    moved = with_prompt(
        text,
        parameter="prompt",
        name="g1.1",
        template="Hi",
        note="n",
        dataset_from=SAMPLES,
        dataset_to=tmp_path,
    )
    beside = with_prompt(
        text,
        parameter="prompt",
        name="g1.1",
        template="Hi",
        note="n",
        dataset_from=SAMPLES,
        dataset_to=SAMPLES,
    )

    assert yaml.safe_load(moved)["dataset"] == {"file": str(SAMPLES / "release_notes.jsonl")}
    assert yaml.safe_load(beside)["dataset"] == {"file": "release_notes.jsonl"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name: x\nparameters: {p: a}\n", "no `prompts:`"),
        ("name: x\nparameters: {p: a}\nprompts: {a: hi}\n", "no parameter 'prompt'"),
        ("- a list\n", "not a YAML mapping"),
        ("name: [unclosed\n", "not YAML"),
    ],
)
def test_a_text_it_cannot_edit_is_bad_input(text: str, words: str) -> None:
    with pytest.raises(BadInput, match=words):
        with_prompt(text, parameter="prompt", name="g1.1", template="Hi", note="n")


def test_a_file_a_yaml_writer_folded_keeps_every_byte_but_the_edits() -> None:
    """Values folded at 80 columns (as PyYAML writes them), odd spacing inside a flow list and
    a block list of stops: edited in place, nothing of them moves."""
    text = (
        "name: folded\n"
        "description: A description long enough that a YAML writer folded it onto a second\n"
        "  line.\n"
        "parameters:\n"
        "  prompt: [ plain ,  terse ]   # two prompts\n"
        "  stop:\n"
        "  - END\n"
        "prompts:\n"
        "  plain: 'Summarise this change for release notes in one sentence: {{ item.input.change\n"
        "    }}'\n"
        "  terse: '{{ item.input.change }}'\n"
        "pipeline:\n"
        "- {name: a, user: '{{ prompts[params.prompt] }}'}\n"
    )

    written = with_prompt(text, parameter="prompt", name="g1.1", template=TEMPLATE, note="n")

    added, replaced = changes(text, written)
    assert added == [
        "  # n",
        "  g1.1: |",
        "    Use the exact names.",
        "    Change: {{ item.input.change }}",
    ]
    assert replaced == [
        (
            "  prompt: [ plain ,  terse ]   # two prompts",
            "  prompt: [g1.1,  plain ,  terse ]   # two prompts",
        )
    ]
    assert yaml.safe_load(written)["prompts"]["g1.1"] == TEMPLATE
