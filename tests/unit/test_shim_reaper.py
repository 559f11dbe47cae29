"""The reaper: status mapping, fan-out by pid, early exits, stale buffered pids."""

from __future__ import annotations

import asyncio
import os
import signal

from shimd.reaper import UNCLAIMED_MAX, Exit, Reaper, exit_status


class FakeWaitpid:
    """Hands out queued (pid, raw status) pairs, then 0 (children alive) or ECHILD."""

    def __init__(self) -> None:
        self.queue: list[tuple[int, int]] = []
        self.no_children = False

    def __call__(self, pid: int, options: int) -> tuple[int, int]:
        assert pid == -1 and options == os.WNOHANG
        if self.queue:
            return self.queue.pop(0)
        if self.no_children:
            raise ChildProcessError
        return 0, 0


def raw_exit(code: int) -> int:
    return code << 8


def raw_signal(sig: int) -> int:
    return sig


def test_exit_status_mapping() -> None:
    assert exit_status(raw_exit(3)) == 3
    assert exit_status(raw_signal(signal.SIGKILL)) == 137
    assert exit_status(raw_signal(signal.SIGTERM)) == 143


def test_fan_out_to_every_waiter_of_a_pid_and_to_listeners() -> None:
    async def go() -> None:
        wp = FakeWaitpid()
        r = Reaper(wp)
        seen: list[Exit] = []
        r.subscribe(seen.append)
        a, b, other = r.wait(10), r.wait(10), r.wait(11)
        wp.queue = [(10, raw_exit(2))]
        r.reap()
        assert (await a).status == 2 and (await b).status == 2
        assert not other.done()
        assert [e.pid for e in seen] == [10]

    asyncio.run(go())


def test_early_exit_is_buffered_for_a_later_wait() -> None:
    async def go() -> None:
        wp = FakeWaitpid()
        r = Reaper(wp)
        wp.queue = [(20, raw_signal(signal.SIGKILL)), (21, raw_exit(0))]
        wp.no_children = True
        r.reap()  # stops at ECHILD without raising
        assert (await r.wait(20)).status == 137
        assert (await r.wait(21)).status == 0
        # claimed exits are not handed out twice
        assert not r.wait(20).done()

    asyncio.run(go())


def test_wait_fresh_drops_a_stale_exit_of_a_reused_pid() -> None:
    async def go() -> None:
        wp = FakeWaitpid()
        r = Reaper(wp)
        wp.queue = [(30, raw_exit(1))]
        r.reap()
        fut = r.wait_fresh(30)
        assert not fut.done()
        wp.queue = [(30, raw_exit(5))]
        r.reap()
        assert (await fut).status == 5

    asyncio.run(go())


def test_unclaimed_buffer_is_bounded() -> None:
    async def go() -> None:
        wp = FakeWaitpid()
        r = Reaper(wp)
        wp.queue = [(1000 + i, raw_exit(0)) for i in range(UNCLAIMED_MAX + 5)]
        r.reap()
        assert not r.wait(1000).done()  # the oldest fell off
        assert r.wait(1000 + UNCLAIMED_MAX + 4).done()

    asyncio.run(go())


def test_real_sigchld_reaps_a_real_child() -> None:
    async def go() -> int:
        r = Reaper()
        r.install(asyncio.get_running_loop())
        try:
            pid = os.posix_spawn("/bin/sh", ["sh", "-c", "exit 7"], dict(os.environ))
            ex = await asyncio.wait_for(r.wait_fresh(pid), 10)
            return ex.status
        finally:
            r.uninstall()

    assert asyncio.run(go()) == 7
