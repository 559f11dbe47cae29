"""The launcher's shim forked ahead (shimd.launch.spare): it serves the next launch, it is forked
only once the launcher is idle, and it never outlives the launcher or breaks a launch."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

from daemon.shims.client import ShimClient
from daemon.shims.launcher import ShimHandle, ShimLauncher
from shimd.launch.spare import REFILL_IDLE

DEADLINE = 20.0


@contextlib.asynccontextmanager
async def _launcher(exec_root: Path) -> AsyncIterator[ShimLauncher]:
    """A started launcher; at the end, the shims it launched that a failed test left are killed."""
    launcher = ShimLauncher(exec_root)
    await launcher.start()
    try:
        yield launcher
    finally:
        for pid in _children(launcher.pid) if launcher.pid is not None else ():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "ctrd-shim":
                    os.kill(pid, signal.SIGKILL)
        await launcher.close()


def _children(pid: int) -> set[int]:
    kids: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError):
            kids |= {int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split()}
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def _spare_of(launcher: ShimLauncher, shims: set[int]) -> int:
    """The launcher's one child that is not a launched shim, once it has forked it."""
    assert launcher.pid is not None
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        spares = _children(launcher.pid) - shims
        if spares:
            assert len(spares) == 1, spares
            return spares.pop()
        await asyncio.sleep(REFILL_IDLE)
    raise AssertionError("the launcher forked no spare shim")


async def _gone(pid: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while _alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def _works(h: ShimHandle) -> None:
    c = await ShimClient.connect(h.address)
    try:
        assert (await c.connect()).shim_pid == h.pid
        await c.shutdown()
    finally:
        await c.close()
    await _gone(h.pid)


def test_an_idle_launcher_forks_a_spare_that_serves_the_next_launch(short_tmp: Path) -> None:
    async def run() -> None:
        async with _launcher(short_tmp / "sp") as launcher:
            spare = await _spare_of(launcher, set())
            assert not (short_tmp / "sp" / "shims").exists()  # a spare holds no state dir before its request
            h = await launcher.launch("first")
            assert h.pid == spare  # served by the spare: no fork on the request's path
            assert h.state_dir == short_tmp / "sp" / "shims" / "first"
            assert Path(f"/proc/{h.pid}/comm").read_text().strip() == "ctrd-shim"
            nxt = await _spare_of(launcher, {h.pid})  # the next one, after the launcher's quiet spell
            assert nxt != spare
            await _works(h)
            h2 = await launcher.launch("second")
            assert h2.pid == nxt
            await _works(h2)

    asyncio.run(run())


async def _helper_of(spare: int) -> int:
    """The create helper a spare shim forks while it waits for its request."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        kids = _children(spare)
        if kids:
            assert len(kids) == 1, kids
            helper = kids.pop()
            if Path(f"/proc/{helper}/comm").read_text().strip() == "ctrd-shim-call":
                return helper
        await asyncio.sleep(0.01)
    raise AssertionError("the spare shim forked no create helper")


def _sid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[3])


def test_a_spare_forks_its_create_helper_while_it_waits_and_the_shim_keeps_it(short_tmp: Path) -> None:
    async def run() -> None:
        async with _launcher(short_tmp / "sh") as launcher:
            spare = await _spare_of(launcher, set())
            helper = await _helper_of(spare)
            assert _sid(helper) == _sid(spare) == spare  # the spare's own session, as the shim's
            h = await launcher.launch("held")
            assert h.pid == spare and _children(h.pid) == {helper}  # no other fork for Create
            await _works(h)  # a shutdown before any Create discards the helper
            assert not _alive(helper)

    asyncio.run(run())


def test_a_closed_launcher_leaves_no_spare_behind(short_tmp: Path) -> None:
    async def run() -> None:
        async with _launcher(short_tmp / "sc") as launcher:
            spare = await _spare_of(launcher, set())
            helper = await _helper_of(spare)
        assert not _alive(spare)  # gone before the launcher's exit, not some time after
        await _gone(helper)
        assert not _alive(helper) and not Path(f"/proc/{helper}").exists()  # reaped by the spare, no zombie

    asyncio.run(run())


def test_a_launch_still_works_when_the_spare_was_killed(short_tmp: Path) -> None:
    async def run() -> None:
        async with _launcher(short_tmp / "sk") as launcher:
            spare = await _spare_of(launcher, set())
            os.kill(spare, signal.SIGKILL)
            await _gone(spare)
            h = await launcher.launch("after-kill")  # the launcher forks one afresh
            assert h.pid != spare
            await _works(h)

    asyncio.run(run())
