"""The shim's healthcheck rules (shimd/health.py) with a fake probe and a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from ctrd.shim.v1 import shim_pb2
from shimd import health
from shimd.loop import new_loop


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(**kw: int) -> tuple[health.Health, Clock]:
    clock = Clock()
    cfg = shim_pb2.HealthConfig(test=["CMD-SHELL", "test -e /ok"], **kw)

    async def never(args: list[str], timeout: float) -> tuple[int, bytes] | None:
        raise AssertionError("not called")

    return health.Health(cfg, never, clock), clock


def test_probe_args_forms() -> None:
    assert health.probe_args(["CMD-SHELL", "curl -f x || exit 1"]) == ["/bin/sh", "-c", "curl -f x || exit 1"]
    assert health.probe_args(["CMD", "cat", "/ok"]) == ["cat", "/ok"]
    assert health.probe_args(["NONE"]) == [] and health.probe_args([]) == []


def test_defaults_are_dockers() -> None:
    h, _ = make()
    assert (h.interval, h.timeout, h.retries, h.start_period, h.start_interval) == (30.0, 30.0, 3, 0.0, 5.0)
    assert h.status == "starting" and h.seq == 1 and h.next_delay() == 30.0


def test_retries_make_it_unhealthy_and_a_success_heals() -> None:
    h, c = make(retries=2, interval_ns=1_000_000_000)
    h.record(c.now, c.now, 0, b"fine")
    assert (h.status, h.failing_streak) == ("healthy", 0)
    h.record(c.now, c.now, 1, b"no")
    assert (h.status, h.failing_streak) == ("healthy", 1)
    h.record(c.now, c.now, -1, b"timeout")
    assert (h.status, h.failing_streak) == ("unhealthy", 2)
    h.record(c.now, c.now, 0, b"")
    assert (h.status, h.failing_streak) == ("healthy", 0)
    assert h.seq == 5


def test_start_period_failures_do_not_count_but_a_success_does() -> None:
    h, c = make(retries=1, start_period_ns=10 * 10**9, start_interval_ns=10**9, interval_ns=60 * 10**9)
    assert h.next_delay() == 1.0  # the start interval while starting in the start period
    h.record(c.now, c.now, 1, b"")
    assert (h.status, h.failing_streak) == ("starting", 0)
    h.record(c.now, c.now, 0, b"")
    assert h.status == "healthy" and h.next_delay() == 60.0
    h.record(c.now, c.now, 1, b"")  # healthy once: failures count even inside the start period
    assert (h.status, h.failing_streak) == ("unhealthy", 1)
    h2, c2 = make(retries=1, start_period_ns=10 * 10**9)
    c2.now += 11
    assert h2.next_delay() == 30.0
    h2.record(c2.now, c2.now, 1, b"")
    assert h2.status == "unhealthy"


def test_log_keeps_the_last_five_and_caps_output() -> None:
    h, c = make()
    for i in range(7):
        h.record(c.now + i, c.now + i + 0.5, i, b"x" * 5000 if i == 6 else str(i).encode())
    p = h.to_proto()
    assert [r.exit_code for r in p.log] == [2, 3, 4, 5, 6]
    assert len(p.log[-1].output) == health.MAX_OUTPUT and p.log[0].output == "2"
    assert p.log[0].start == c.now + 2 and p.log[0].end == c.now + 2.5


def test_run_probes_every_interval_and_wakes_long_polls() -> None:
    async def body() -> None:
        calls: list[tuple[list[str], float]] = []
        results = iter([(0, b"ok"), (1, b"bad"), (1, b"bad")])

        async def probe(args: list[str], timeout: float) -> tuple[int, bytes] | None:
            calls.append((args, timeout))
            return next(results)

        cfg = shim_pb2.HealthConfig(test=["CMD", "true"], interval_ns=10_000_000, timeout_ns=2 * 10**9, retries=2)
        h = health.Health(cfg, probe)
        runner = asyncio.ensure_future(h.run())
        seen = []
        seq = h.seq  # 1: "starting", before any probe
        while len(seen) < 3:
            await asyncio.wait_for(h.wait_after(seq), 10)
            seq = h.seq
            seen.append(h.status)
        runner.cancel()
        assert seen == ["healthy", "healthy", "unhealthy"]
        assert calls[0] == (["true"], 2.0)

    loop = new_loop()
    try:
        loop.run_until_complete(body())
    finally:
        loop.close()


def test_stop_answers_pending_long_polls_with_the_last_state() -> None:
    async def body() -> None:
        h, _ = make()
        poll = asyncio.ensure_future(h.wait_after(h.seq))
        await asyncio.sleep(0)
        assert not poll.done()
        h.stop()
        await asyncio.wait_for(poll, 5)
        await asyncio.wait_for(h.wait_after(h.seq), 5)  # and at once from now on
        assert h.seq == 1

    asyncio.run(body())


def test_stop_lets_a_probe_in_flight_finish_then_ends_the_loop() -> None:
    async def body() -> None:
        release: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entered = asyncio.Event()

        async def slow(args: list[str], timeout: float) -> tuple[int, bytes] | None:
            entered.set()
            await release
            return 0, b"done"

        h = health.Health(shim_pb2.HealthConfig(test=["CMD", "true"], interval_ns=1_000_000), slow)
        h.start()
        await asyncio.wait_for(entered.wait(), 5)
        h.stop()  # mid-probe: not cancelled (its exec would be orphaned), the loop ends after it
        release.set_result(None)
        await h.finished(5)
        assert h._runner is not None and h._runner.done() and not h._runner.cancelled()
        assert [r.output for r in h.log] == ["done"]
        idle = health.Health(shim_pb2.HealthConfig(test=["CMD", "true"]), slow)
        idle.start()
        await asyncio.sleep(0)
        idle.stop()  # sleeping between probes: cancelled at once
        await idle.finished(5)
        assert idle._runner is not None and idle._runner.done()

    asyncio.run(body())


def test_a_paused_container_records_nothing() -> None:
    async def body() -> None:
        async def paused(args: list[str], timeout: float) -> tuple[int, bytes] | None:
            return None

        h = health.Health(shim_pb2.HealthConfig(test=["CMD", "true"]), paused)
        await h.probe_once()
        assert h.seq == 1 and h.log == []

    asyncio.run(body())


@pytest.mark.parametrize("timeout, text", [(1.0, "1s"), (30.0, "30s"), (0.3, "300ms"), (90.0, "1m30s"),
                                           (1.5, "1.5s"), (3600.0, "1h0m0s")])
def test_timeout_message_uses_go_durations(timeout: float, text: str) -> None:
    assert health.timeout_message(timeout).decode() == f"Health check exceeded timeout ({text})"
