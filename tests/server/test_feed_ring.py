"""The websocket feed's shared ring: positions, the experiment filter, and skipping ahead."""

from __future__ import annotations

import asyncio

from promptlooper_tui.engine.events import EventBus
from promptlooper_tui.server.feed_ring import Encoded, FeedRing


def seqs(ready: list[Encoded]) -> list[int]:
    return [encoded.seq for encoded in ready]


async def test_a_reader_gets_what_was_published_after_it_joined_once_each() -> None:
    bus = EventBus()
    ring = FeedRing(bus, size=8, wake_delay=0)
    bus.publish("score.added", "exp_a")
    reader = ring.add(None)
    published = [bus.publish("score.added", "exp_a").seq for _ in range(5)]
    first, lost = ring.read(reader, 3)
    rest, _ = ring.read(reader, 3)
    assert lost == 0 and seqs(first + rest) == published
    assert ring.read(reader, 3) == ([], 0)


async def test_the_replay_comes_first_then_live_events_without_gap() -> None:
    bus = EventBus()
    ring = FeedRing(bus, size=8, wake_delay=0)
    old = [bus.publish("score.added", exp).seq for exp in ("exp_a", "exp_b", "exp_a")]
    reader = ring.add("exp_a", bus.replay(0))
    live = bus.publish("score.added", "exp_a").seq
    ready, _ = ring.read(reader, 10)
    ready += ring.read(reader, 10)[0]
    assert seqs(ready) == [old[0], old[2], live]


async def test_a_reader_that_falls_out_of_the_ring_is_told_how_many_it_lost() -> None:
    bus = EventBus()
    ring = FeedRing(bus, size=8, wake_delay=0)
    everything = ring.add(None)
    following = ring.add("exp_a")
    for _ in range(20):
        bus.publish("score.added", "exp_a")
        bus.publish("score.added", "exp_b")
    assert ring.read(everything, 4) == ([], 40)
    assert ring.read(following, 4) == ([], 20)
    after = bus.publish("score.added", "exp_a").seq
    assert seqs(ring.read(following, 4)[0]) == [after]


async def test_others_events_overflowing_the_ring_cost_a_follower_nothing() -> None:
    bus = EventBus()
    ring = FeedRing(bus, size=8, wake_delay=0)
    following = ring.add("exp_a")
    for _ in range(10):
        bus.publish("score.added", "exp_b")
    kept = bus.publish("score.added", "exp_a").seq
    ready, lost = ring.read(following, 4)
    assert (seqs(ready), lost) == ([kept], 0)
    # Parked: others' events neither wake it nor make it lose anything.
    waiting = asyncio.create_task(ring.wait(following))
    await asyncio.sleep(0)
    for _ in range(20):
        bus.publish("score.added", "exp_b")
    for _ in range(5):  # the wake, were one due, is a call_later(0): it runs within a turn
        await asyncio.sleep(0)
    assert not waiting.done()
    after = bus.publish("score.added", "exp_a").seq
    async with asyncio.timeout(5):
        await waiting
    assert seqs(ring.read(following, 4)[0]) == [after]
