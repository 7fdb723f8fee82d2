"""The garbage collector's settings for the processes that run sweeps: the CLI and the daemon.

A sweep allocates a few hundred objects a run, nearly all freed at once by reference counting;
with Python's default (a young collection every 700 allocations, a full one every 100 young
ones) the collector re-examined the live ones thousands of times a sweep: ~0.06 ms of CPU a run
at zero latency, ~0.03 ms with young collections every 10,000 allocations (bench/README.md).
"""

from __future__ import annotations

import gc

#: Allocations of container objects between two young collections (Python's default is 700):
#: garbage cycles wait a little longer, costing a few MB at most.
YOUNG_COLLECTION_EVERY = 10_000


def collect_less_often() -> None:
    """Set once at a process's entry point, before it starts working."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)


def freeze_start_up() -> None:
    """Leave every object alive now (modules, the app, its routes) out of all later
    collections: for a long-running process once it has started, so a full collection walks
    only what it made since."""
    gc.freeze()
