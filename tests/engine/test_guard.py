"""The worker process that checks experiment text: it works under a full-screen app's stand-in
stderr, and a check past its memory bound ends as "too expensive", never as a crash."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from promptlooper_tui.engine.guard import CheckGuard
from promptlooper_tui.engine.limits import Limits, TooExpensive
from tests.conftest import experiment_yaml

SAMPLES = Path(__file__).parents[2] / "sample_experiments"


def test_a_check_works_when_stderr_has_no_file_descriptor() -> None:
    """Textual replaces sys.stderr with an object whose fileno() is -1 while the app runs."""
    script = textwrap.dedent(
        f"""
        import asyncio, io, sys
        from promptlooper_tui.engine.guard import CheckGuard

        class StandIn(io.StringIO):
            def fileno(self):
                return -1

        async def main():
            guard = CheckGuard()
            sys.stderr = StandIn()
            try:
                loaded = await guard.load_text(open({str(SAMPLES / "quickstart.yaml")!r}).read(),
                                               source="q")
            finally:
                sys.stderr = sys.__stderr__
                await guard.aclose()
            print(loaded.spec.name)

        if __name__ == "__main__":
            asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "quickstart"


async def test_a_check_past_the_memory_bound_is_too_expensive(tmp_path: Path) -> None:
    rows = "".join(
        '{"input": {"question": "q", "article": "%s"}, "keywords": ["a"]}\n' % ("x" * 1000)
        for _ in range(60_000)
    )
    (tmp_path / "big.jsonl").write_text(rows)
    guard = CheckGuard(Limits(check_memory_mb=200))
    try:
        with pytest.raises(TooExpensive, match="memory"):
            await guard.load_text(
                experiment_yaml(dataset={"file": "big.jsonl"}), source="x", base_dir=tmp_path
            )
        # The worker that ran out was replaced: the next check works.
        loaded = await guard.load_text(experiment_yaml(), source="x")
        assert loaded.spec.name == "support"
    finally:
        await guard.aclose()
