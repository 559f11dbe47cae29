"""When the container record is written against what is told: a started container's record is
written beside the shim's create (daemon.containers.start), an exit is told to waiters before its
record's write when the shim still holds it (Monitor.record_exit). Fakes: no disk, no shim."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

import pytest

from daemon.containers.monitor import Monitor
from daemon.containers.record import Container, State
from daemon.containers.start import _StartedRecord
from daemon.containers.state import Status
from daemon.shims.api import Exit
from tests.unit.test_daemon_record import make


class GatedStore:
    """store.save that records what it was given and blocks until released."""

    def __init__(self) -> None:
        self.saved: list[Container] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail: Exception | None = None
        self.durable: list[bool] = []

    def save(self, c: Container, durable: bool = True) -> None:
        self.entered.set()
        self.gate.wait(10)
        self.saved.append(c)
        self.durable.append(durable)
        if self.fail is not None:
            raise self.fail


class Events:
    def publish(self, *args: Any, **kwargs: Any) -> None:
        pass


class Shim:
    shim_pid = 4242


def _monitor(store: GatedStore) -> Any:
    m: Any = Monitor.__new__(Monitor)
    Monitor.__init__(m, None, store, None, None, None, Events(), None)  # type: ignore[arg-type]
    return m


def _created() -> Container:
    c = make()
    c.state = State(Status.CREATED)
    c.network = None
    return c


def test_the_started_record_is_written_beside_the_create_and_the_live_one_waits() -> None:
    async def go() -> None:
        store = GatedStore()
        c = _created()
        record = _StartedRecord(_monitor(store), c)
        settings = make().network
        assert settings is not None
        record.write(Shim(), settings)  # type: ignore[arg-type]
        await asyncio.to_thread(store.entered.wait, 10)
        # the write runs while the caller goes on (the shim's create): the live record is untouched
        assert c.status is Status.CREATED and c.network is None and c.shim_pid == 0
        store.gate.set()
        await record.landed()
        (disk,) = store.saved
        assert disk is not c
        assert (disk.status, disk.state.pid, disk.shim_pid, disk.network) == (Status.RUNNING, 0, 4242, settings)
        assert disk.has_been_started_before and disk.state.started_at > 0
        assert record.state_changes["status"] is Status.RUNNING

    asyncio.run(go())


def test_a_failed_write_is_the_starts_error_unless_the_start_failed_already() -> None:
    async def go() -> None:
        store = GatedStore()
        store.fail = OSError(28, "No space left on device")
        store.gate.set()
        c = _created()
        record = _StartedRecord(_monitor(store), c)
        await record.settled()  # nothing written yet: nothing to wait for
        assert not record.written
        net = make().network
        assert net is not None
        record.write(Shim(), net)  # type: ignore[arg-type]
        with pytest.raises(OSError, match="No space left"):
            await record.landed()
        await record.settled()  # after a failed start: swallowed, its own error is reported

    asyncio.run(go())


@pytest.mark.parametrize("early", [True, False])
def test_an_exit_the_shim_holds_is_told_before_its_record_is_written(early: bool) -> None:
    async def go() -> None:
        store = GatedStore()
        m = _monitor(store)
        c = make()
        c.state = State(Status.RUNNING, pid=7, started_at=1.0)
        woke = asyncio.Event()

        async def waiter() -> None:
            async with c.changed:
                await c.changed.wait_for(lambda: c.exit_seq > 0)
            woke.set()

        w = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)  # the waiter waits
        recording = asyncio.ensure_future(m.record_exit(c, Exit(3, 2.0), early=early))
        await asyncio.to_thread(store.entered.wait, 10)  # the record's write has begun (and blocks)
        if early:
            await asyncio.wait_for(woke.wait(), 10)
            assert store.saved == []  # told while the write still runs
        else:
            for _ in range(20):  # loop turns enough for a notified waiter to run
                await asyncio.sleep(0)
            assert not woke.is_set()
        store.gate.set()
        await recording
        await w
        assert (store.saved[0].status, store.saved[0].state.exit_code) == (Status.EXITED, 3)

    asyncio.run(go())


@pytest.mark.parametrize("early", [True, False])
def test_an_auto_remove_containers_exit_record_is_not_fsynced(early: bool) -> None:
    async def go() -> None:
        store = GatedStore()
        store.gate.set()
        m = _monitor(store)
        kept, gone = make(), make()
        gone.host_config = dataclasses.replace(gone.host_config, auto_remove=True)
        for c in (kept, gone):
            c.state = State(Status.RUNNING, pid=7, started_at=1.0)
            await m.record_exit(c, Exit(0, 2.0), early=early)
        assert [(c.status, d) for c, d in zip(store.saved, store.durable, strict=True)] == [
            (Status.EXITED, True), (Status.EXITED, False)]

    asyncio.run(go())
