"""A create whose request and bundle disagree on the terminal fails with InvalidArgument from the
forked backend's helper (the runtime's check, here its stand-in's), and leaves nothing half-created in the shim.
No root: the warm-up's /bin/sh stand-in runtime. In a fresh interpreter (tests.fresh)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from ctrd import errdefs
from ctrd.shim import attachwire
from ctrd.shim.v1 import shim_pb2
from shimd import files
from shimd.launch import warmup
from shimd.reaper import Reaper
from shimd.state import Status
from shimd.task import Task
from tests.fresh import in_fresh_interpreter


@pytest.mark.parametrize("in_bundle,requested", [(False, True), (True, False)])
def test_terminal_mismatch_is_invalid_argument(short_tmp: Path, in_bundle: bool, requested: bool) -> None:
    in_fresh_interpreter(__name__, "terminal_mismatch", str(short_tmp), str(in_bundle), str(requested))


def terminal_mismatch(tmp: str, in_bundle_s: str, requested_s: str) -> None:
    short_tmp, in_bundle, requested = Path(tmp), in_bundle_s == "True", requested_s == "True"
    bundle = short_tmp / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"process": {"args": ["sh"], "terminal": in_bundle}}))

    async def go() -> None:
        reaper = Reaper()
        reaper.install(asyncio.get_running_loop())
        task = Task("c1", short_tmp, reaper, warmup._sh_backend)
        try:
            with pytest.raises(errdefs.InvalidArgument, match=f"terminal: the request says {requested}"):
                await task.create(shim_pb2.CreateRequest(id="c1", bundle=str(bundle), runtime="sh",
                                                         log_path=str(short_tmp / "log"), terminal=requested))
            assert task.status is Status.NONE
            assert not os.path.exists(short_tmp / files.RUNTIME_FILE)
            assert not os.path.exists(short_tmp / attachwire.SOCKET_FILE)
        finally:
            await task.shutdown()
            reaper.uninstall()

    asyncio.run(asyncio.wait_for(go(), 60))
