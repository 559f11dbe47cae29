"""shimd.sync: the shim's lock (Mutex) and once-set flag (Flag), on the shim's own loop."""

from __future__ import annotations

import asyncio

import pytest

from shimd.loop import ShimLoop
from shimd.sync import Flag, Mutex
from tests.shimloop import run


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_one_holder_at_a_time_and_waiters_in_arrival_order(loop: ShimLoop) -> None:
    mutex = Mutex()
    seen: list[str] = []

    async def holder(name: str) -> None:
        async with mutex:
            seen.append(f"{name}+")
            await _turns()
            seen.append(f"{name}-")

    async def go() -> None:
        await asyncio.gather(*(holder(n) for n in "abc"))

    run(loop, go)
    assert seen == ["a+", "a-", "b+", "b-", "c+", "c-"]
    assert not mutex.locked()


def test_a_holder_that_raises_releases(loop: ShimLoop) -> None:
    mutex = Mutex()

    async def go() -> bool:
        with pytest.raises(RuntimeError):
            async with mutex:
                raise RuntimeError("verb failed")
        async with mutex:
            return mutex.locked()

    assert run(loop, go) is True
    assert not mutex.locked()


async def _take(mutex: Mutex, got: list[str], name: str) -> None:
    async with mutex:
        got.append(name)


def test_a_cancelled_waiter_leaves_the_queue(loop: ShimLoop) -> None:
    mutex = Mutex()
    got: list[str] = []

    async def go() -> None:
        async with mutex:
            first = asyncio.ensure_future(_take(mutex, got, "cancelled"))
            second = asyncio.ensure_future(_take(mutex, got, "second"))
            await _turns()
            first.cancel()
            await _turns()
        await second
        assert first.cancelled()

    run(loop, go)
    assert got == ["second"]


def test_a_waiter_cancelled_after_its_wake_up_passes_it_on(loop: ShimLoop) -> None:
    """Woken by the release, cancelled before it ran: the next waiter must still get the lock."""
    mutex = Mutex()
    got: list[str] = []

    async def go() -> None:
        await mutex.__aenter__()
        first = asyncio.ensure_future(_take(mutex, got, "first"))
        second = asyncio.ensure_future(_take(mutex, got, "second"))
        await _turns()
        await mutex.__aexit__(None, None, None)  # wakes `first` ...
        first.cancel()  # ... which is cancelled before it runs
        await asyncio.wait_for(second, 5)
        assert first.cancelled()

    run(loop, go)
    assert got == ["second"]
    assert not mutex.locked()


def test_flag_wakes_every_waiter_once_set_and_stays_set(loop: ShimLoop) -> None:
    flag = Flag()
    woke: list[int] = []

    async def waiter(i: int) -> None:
        await flag.wait()
        woke.append(i)

    async def go() -> None:
        waiters = [asyncio.ensure_future(waiter(i)) for i in range(3)]
        await _turns()
        assert woke == [] and not flag.is_set()
        flag.set()
        flag.set()  # a second set is a no-op
        await asyncio.gather(*waiters)
        await flag.wait()  # already set: returns at once

    run(loop, go)
    assert sorted(woke) == [0, 1, 2]
    assert flag.is_set()


def test_a_cancelled_flag_waiter_does_not_disturb_the_others(loop: ShimLoop) -> None:
    flag = Flag()

    async def go() -> bool:
        gone = asyncio.ensure_future(flag.wait())
        kept = asyncio.ensure_future(flag.wait())
        await _turns()
        gone.cancel()
        await _turns()
        flag.set()
        await kept
        return gone.cancelled()

    assert run(loop, go) is True


def test_a_newcomer_before_the_woken_waiter_runs_delays_it_but_does_not_lose_it(loop: ShimLoop) -> None:
    mutex = Mutex()
    got: list[str] = []

    async def go() -> None:
        await mutex.__aenter__()
        waiter = asyncio.ensure_future(_take(mutex, got, "waiter"))
        await _turns()
        await mutex.__aexit__(None, None, None)  # wakes `waiter` ...
        await mutex.__aenter__()  # ... but this caller takes the lock before it runs
        await _turns()
        assert not waiter.done() and mutex.locked()
        got.append("newcomer")
        await mutex.__aexit__(None, None, None)
        await asyncio.wait_for(waiter, 5)

    run(loop, go)
    assert got == ["newcomer", "waiter"]
    assert not mutex.locked()
