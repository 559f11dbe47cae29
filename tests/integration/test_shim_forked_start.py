"""The forked backend's create with start (the shim's one-call Create+Start): the create helper
has "start" waiting, so it may start the process, answer and exit before create has returned, its
exit reaped meanwhile. start() must still collect the answer and the exit: it once waited for an
exit that had already been handed to create's own wait, forever (a shim stuck in Create, and a
launcher stuck in its warm-up). No root: the "container" is a /bin/sh child of the helper (not
this process's: with no subreaper here it goes to init, as it would not in a shim). In a fresh
interpreter (tests.fresh)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from shimd import spawn
from shimd.backends.forked import ForkedBackend
from shimd.backends.protocol import BackendConfig, Stdio
from shimd.reaper import Exit, Reaper
from tests.fresh import in_fresh_interpreter


class _Sh:
    """Stands in for runtime.container.Container: create spawns /bin/sh, start does nothing."""

    started: list[int] = []

    def __init__(self, pid: int) -> None:
        self.pid = pid

    @classmethod
    def create(cls, bundle: str, container_id: str, stdio: Any, state_dir: str = "",
               terminal: bool | None = None) -> _Sh:
        return cls(spawn.spawn(["/bin/sh", "-c", "exit 0"], stdin=stdio.stdin, stdout=stdio.stdout,
                               stderr=stdio.stderr))

    def start(self) -> None:
        pass


class _Runtime:
    Container = _Sh
    Stdio = Stdio


def test_start_collects_a_helper_that_finished_before_create_returned(tmp_path: Path) -> None:
    in_fresh_interpreter(__name__, "helper_finished_before_create_returned", str(tmp_path))


def helper_finished_before_create_returned(tmp: str) -> None:
    tmp_path = Path(tmp)
    (tmp_path / "config.json").write_text(json.dumps({"process": {"args": ["sh"], "terminal": False}}))

    async def scenario() -> None:
        reaper = Reaper()
        reaper.install(asyncio.get_running_loop())
        exits: list[Exit] = []
        reaper.subscribe(exits.append)
        null = os.open(os.devnull, os.O_RDWR)
        try:
            backend = ForkedBackend(BackendConfig("c1", str(tmp_path), "", str(tmp_path / "rt")), reaper, tmp_path,
                                    runtime=_Runtime)
            pid = await backend.create(Stdio(null, null, null), start=True)
            # the helper (the one exit that is not the "container"'s) is gone and reaped first
            while not any(e.pid != pid for e in exits):
                await asyncio.sleep(0.01)
            await asyncio.wait_for(backend.start(), 10)
        finally:
            os.close(null)
            reaper.uninstall()

    asyncio.run(asyncio.wait_for(scenario(), 30))
