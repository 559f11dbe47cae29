"""serve() runs the daemon's start (records, recovery, the API coming up) with the cyclic GC off,
after freezing what the imports made, and turns the collector on again however the start ends."""

from __future__ import annotations

import asyncio
import gc
import types

import pytest

from daemon import server


class _Daemon:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.stopping = asyncio.Event()
        self.lock = types.SimpleNamespace(_f=None)
        self.collector_on_during_start: bool | None = None
        self.stopped = False

    async def start(self) -> None:
        self.collector_on_during_start = gc.isenabled()
        if self.fail:
            raise RuntimeError("recovery failed")
        self.stopping.set()  # as a SIGTERM right after the start would

    async def stop(self) -> None:
        self.stopped = True


@pytest.mark.parametrize("fail", [False, True], ids=["started", "start failed"])
def test_the_collector_is_off_during_the_start_only(monkeypatch: pytest.MonkeyPatch, fail: bool) -> None:
    d = _Daemon(fail)
    frozen: list[bool] = []
    monkeypatch.setattr(server, "build_daemon", lambda cfg: d)
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))  # not the test process's heap
    assert gc.isenabled()
    try:
        if fail:
            with pytest.raises(RuntimeError, match="recovery failed"):
                asyncio.run(server.serve(types.SimpleNamespace(live_restore=False)))  # type: ignore[arg-type]
        else:
            asyncio.run(server.serve(types.SimpleNamespace(live_restore=False)))  # type: ignore[arg-type]
        assert d.collector_on_during_start is False
        assert gc.isenabled()
        assert frozen == [True]
        assert d.stopped is not fail  # a failed start holds no lock here: nothing to stop
    finally:
        gc.enable()
