"""What `pip install .` ships: every module of the source tree, the themes and the samples."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_every_module_the_themes_and_the_samples(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("promptlooper-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    source = ROOT / "promptlooper_tui"
    expected = {
        path.relative_to(ROOT).as_posix()
        for pattern in ("*.py", "*.tcss")
        for path in source.rglob(pattern)
        if "__pycache__" not in path.parts
    }
    expected |= {f"promptlooper_tui/themes/{p.name}" for p in (ROOT / "themes").glob("*.yaml")}
    expected |= {
        f"promptlooper_tui/sample_experiments/{p.name}"
        for p in (ROOT / "sample_experiments").iterdir()
        if p.suffix in (".yaml", ".jsonl", ".csv")
    }
    assert sorted(expected - shipped) == []
