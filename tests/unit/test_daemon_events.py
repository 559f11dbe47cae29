"""The events exchange: fan-out, since/until replay, filters, slow subscribers never block."""

from __future__ import annotations

import asyncio
import time

from daemon.events import Exchange


async def collect(agen: object, n: int | None = None, timeout: float = 2.0) -> list[object]:
    out: list[object] = []

    async def run() -> None:
        async for ev in agen:  # type: ignore[attr-defined]
            out.append(ev)
            if n is not None and len(out) >= n:
                return

    await asyncio.wait_for(run(), timeout)
    return out


async def subscribed(ex: Exchange, count: int = 1) -> None:
    """The subscriber's generator registers on its first step: wait for that, not for a while."""
    while ex.subscribers < count:
        await asyncio.sleep(0)


def test_live_subscribers_get_new_events_in_order() -> None:
    async def main() -> None:
        ex = Exchange()
        ex.publish("container", "old", "x")
        sub = ex.subscribe()
        task = asyncio.create_task(collect(sub, 3))
        await subscribed(ex)
        for action in ("create", "start", "die"):
            ex.publish("container", action, "c1", exitCode="0")
        got = await task
        assert [e.action for e in got] == ["create", "start", "die"]  # type: ignore[attr-defined]
        stamps = [e.time_nano for e in got]  # type: ignore[attr-defined]
        assert stamps == sorted(stamps) and len(set(stamps)) == 3

    asyncio.run(main())


def test_since_until_replay_and_filters() -> None:
    async def main() -> None:
        ex = Exchange()
        ex.publish("container", "create", "aaa", name="one")
        mid = time.time()
        await asyncio.sleep(0.01)
        ex.publish("container", "start", "aaa", name="one")
        ex.publish("container", "start", "bbb", name="two")
        end = time.time()
        await asyncio.sleep(0.01)
        ex.publish("container", "die", "aaa", name="one")
        got = await collect(ex.subscribe(since=mid, until=end))
        assert [(e.action, e.id) for e in got] == [("start", "aaa"), ("start", "bbb")]  # type: ignore[attr-defined]
        got = await collect(ex.subscribe(since=1, until=time.time(), filters={"container": "one"}))
        assert [e.action for e in got] == ["create", "start", "die"]  # type: ignore[attr-defined]
        got = await collect(ex.subscribe(since=1, until=time.time(), filters={"event": "start"}))
        assert len(got) == 2

    asyncio.run(main())


def test_until_in_the_future_ends_the_stream_on_time() -> None:
    async def main() -> None:
        ex = Exchange()
        t0 = time.monotonic()
        got = await collect(ex.subscribe(since=time.time() - 1, until=time.time() + 0.2))
        assert got == [] and 0.1 < time.monotonic() - t0 < 5  # (a loaded machine is late, never early)

    asyncio.run(main())


def test_a_slow_subscriber_is_dropped_not_waited_for() -> None:
    async def main() -> None:
        ex = Exchange(queue_size=4)
        sub = ex.subscribe()
        first = asyncio.create_task(collect(sub, None))
        await subscribed(ex)
        for i in range(50):  # nobody reads: the queue overflows, publish never blocks
            ex.publish("container", "tick", str(i))
        assert ex.subscribers == 0
        got = await first
        assert len(got) <= 4

    asyncio.run(main())


def test_close_ends_streams() -> None:
    async def main() -> None:
        ex = Exchange()
        task = asyncio.create_task(collect(ex.subscribe(), None))
        await subscribed(ex)
        ex.close()
        assert await task == []

    asyncio.run(main())


def test_unknown_filter_is_refused() -> None:
    import pytest

    from ctrd.errdefs import InvalidArgument

    async def main() -> None:
        with pytest.raises(InvalidArgument, match="filters"):
            await collect(Exchange().subscribe(filters={"colour": "red"}))

    asyncio.run(main())


def test_event_filter_matches_the_action_before_its_colon() -> None:
    ex = Exchange()
    ev = ex.publish("container", "health_status: healthy", "a" * 64, name="web")
    assert ev.matches({"event": "health_status"}) and ev.matches({"event": "health_status: healthy"})
    assert not ev.matches({"event": "health_status: unhealthy"}) and not ev.matches({"event": "health"})
