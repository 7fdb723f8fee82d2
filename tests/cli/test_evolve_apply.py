"""`promptlooper evolve apply` as a user runs it: the sample evolve experiment run once (in a
folder of its own), then its winning prompt written into a new version of the file, every
comment kept, and stored so `promptlooper run` runs it."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ..helpers import cli, cli_json
from .test_lazy_imports import READ, loaded, python

SAMPLES = Path(__file__).resolve().parents[2] / "sample_experiments"
NAME = "evolve-release-notes"
#: Comment lines of sample_experiments/evolve.yaml, as the person wrote them.
COMMENTS = (
    "# Evolve: the loop writes the next prompt variants itself.",
    "#   promptlooper evolve apply SWEEP_ID" + " " * 28 + "# the winner into a new file",
    "dataset: {file: release_notes.jsonl}   # 60 changes, one JSON object per line",
    "  generations: 4       # rounds of proposals after the prompts above",
    "    model: large-model # the model that writes them (endpoint: defaults to the experiment's)",
)


@dataclass(frozen=True)
class Finished:
    home: Path
    folder: Path
    sweep_id: str
    #: An evolve sweep whose proposer's answers were cut short: its winner is its own prompt.
    own_winner_sweep_id: str
    quickstart_sweep_id: str

    @property
    def original(self) -> Path:
        return self.folder / "evolve.yaml"


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    home = tmp_path_factory.mktemp("home")
    folder = tmp_path_factory.mktemp("experiments")
    for name in ("evolve.yaml", "release_notes.jsonl"):
        shutil.copy(SAMPLES / name, folder / name)
    sweep = cli_json(home, "run", str(folder / "evolve.yaml"))
    assert sweep["status"] == "completed"
    own = folder / "own" / "evolve.yaml"
    own.parent.mkdir()
    shutil.copy(SAMPLES / "release_notes.jsonl", own.parent)
    own.write_text(
        (SAMPLES / "evolve.yaml")
        .read_text()
        .replace(f"name: {NAME}", "name: own-winner")
        .replace("generations: 4 ", "generations: 1 ")
        .replace("params: {temperature: 0.8}", "params: {temperature: 0.8, max_tokens: 5}")
    )
    own_sweep = cli_json(home, "run", str(own))
    quickstart = cli_json(home, "run", str(SAMPLES / "quickstart.yaml"))
    return Finished(home, folder, sweep["sweep_id"], own_sweep["sweep_id"], quickstart["sweep_id"])


def winner(finished: Finished) -> str:
    board = cli_json(finished.home, "leaderboard", NAME, "--sweep", finished.sweep_id, "--top", "1")
    return str(board["entries"][0]["config"]["prompt"])


def test_the_winner_goes_beside_the_original_with_every_comment_kept(finished: Finished) -> None:
    original = finished.original.read_text()

    done = cli(finished.home, "evolve", "apply", finished.sweep_id)

    assert done.returncode == 0, done.stderr
    written = finished.folder / "evolve.evolved.yaml"
    text = written.read_text()
    assert f"wrote {written}" in done.stdout and "version 2" in done.stdout
    for comment in COMMENTS:
        assert comment in text.splitlines(), comment
    kept = [line for line in original.splitlines() if "#" in line]
    assert [line for line in text.splitlines() if line in kept] == kept
    name = winner(finished)
    assert name.startswith("g"), "the sample's sweep is won by a prompt it wrote"
    document = yaml.safe_load(text)
    assert list(document["prompts"]) == [name, "plain", "keyworded", "friendly"]
    assert document["parameters"]["prompt"] == [name, "plain", "keyworded", "friendly"]
    assert f"  # {name}: written by evolve sweep {finished.sweep_id}" in text
    assert name in done.stdout and document["prompts"][name].splitlines()[0] in done.stdout

    # The file is a valid experiment, stored as version 2: running the file runs version 2.
    assert cli(finished.home, "validate", str(written)).returncode == 0
    stored = cli_json(finished.home, "experiments", "show", NAME)
    assert stored["version"] == 2
    assert stored["spec"]["prompts"][name] == document["prompts"][name]
    dry = cli(finished.home, "run", str(written), "--dry-run")
    assert dry.returncode == 0, dry.stderr


def test_running_the_written_file_runs_the_stored_version(finished: Finished) -> None:
    out = finished.folder / "again.yaml"
    applied = cli_json(finished.home, "evolve", "apply", finished.sweep_id, "--out", str(out))

    ran = cli_json(finished.home, "run", str(out))

    assert ran["experiment_version"] == applied["version"]
    assert ran["status"] == "completed"


def test_an_existing_file_is_kept_unless_forced(finished: Finished, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "mine.yaml"
    out.parent.mkdir()
    out.write_text("mine\n")

    refused = cli(finished.home, "evolve", "apply", finished.sweep_id, "--out", str(out))

    assert refused.returncode == 2
    assert str(out) in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert out.read_text() == "mine\n"

    forced = cli_json(
        finished.home, "evolve", "apply", finished.sweep_id, "--out", str(out), "--force"
    )

    assert set(forced) == {"file", "experiment", "version", "prompt", "template"}
    assert forced["file"] == str(out) and forced["experiment"] == NAME
    assert forced["prompt"] == winner(finished)
    document = yaml.safe_load(out.read_text())
    assert document["prompts"][forced["prompt"]] == forced["template"]
    # Written elsewhere, the file still finds the dataset the original named.
    assert document["dataset"] == {"file": str(finished.folder / "release_notes.jsonl")}
    assert cli(finished.home, "validate", str(out)).returncode == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["mine.yaml"], "no temporary left"


def test_a_winner_of_the_experiments_own_prompts_applies_nothing(finished: Finished) -> None:
    folder = finished.folder / "own"

    done = cli(finished.home, "evolve", "apply", finished.own_winner_sweep_id)

    assert done.returncode == 0, done.stderr
    board = cli_json(finished.home, "leaderboard", "own-winner", "--top", "1")
    own = board["entries"][0]["config"]["prompt"]
    assert done.stdout == f"the winner is the experiment's own prompt {own}; nothing to apply\n"
    assert sorted(p.name for p in folder.iterdir()) == ["evolve.yaml", "release_notes.jsonl"]
    assert cli_json(finished.home, "experiments", "show", "own-winner")["version"] == 1


@pytest.mark.parametrize(
    ("sweep", "words"),
    [
        ("quickstart", "is a grid sweep, not an evolve sweep"),
        ("sw_nothing", "no sweep (or experiment) with id or name 'sw_nothing'"),
        ("x" * 10_000, "no sweep (or experiment)"),
    ],
)
def test_what_cannot_be_applied_is_exit_2_with_one_line(
    finished: Finished, sweep: str, words: str
) -> None:
    ref = finished.quickstart_sweep_id if sweep == "quickstart" else sweep

    done = cli(finished.home, "evolve", "apply", ref)

    assert done.returncode == 2
    assert words in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_reading_the_store_does_not_load_ruamel(finished: Finished) -> None:
    read = json.loads(python(READ, str(finished.home), "sweeps", "list"))

    assert read["code"] == 0
    assert loaded(read["modules"], ("ruamel",)) == []


def test_a_file_that_cannot_be_written_is_exit_2_and_stores_nothing(
    finished: Finished, tmp_path: Path
) -> None:
    versions = cli_json(finished.home, "experiments", "show", NAME)["versions"]
    out = tmp_path / "missing" / "notes.yaml"

    done = cli(finished.home, "evolve", "apply", finished.sweep_id, "--out", str(out))

    assert done.returncode == 2
    assert done.stderr == f"error: cannot write {out}: No such file or directory\n"
    assert cli_json(finished.home, "experiments", "show", NAME)["versions"] == versions
