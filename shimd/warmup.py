"""Launcher warm-up: run the shim's code paths once before gc.freeze() and fork.

Every object a forked shim creates or touches on first use (protobuf message classes' lazy
state, asyncio's loop machinery, specialised bytecode, module caches) costs that shim private,
copied pages. Touching them once in the launcher puts them in pages all shims share. The
warm-up talks to a throw-away ShimService over a socketpair; no container is created.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from pathlib import Path

from ctrd import errdefs
from ctrd.shim.v1 import shim_pb2
from shimd import files, framing
from shimd.client import ShimClient
from shimd.logs import JsonFileWriter, LineSplitter
from shimd.reaper import Reaper
from shimd.server import Server
from shimd.service import ShimService
from shimd.task import Task


async def _session(state_dir: Path) -> None:
    loop = asyncio.get_running_loop()
    reaper = Reaper()
    reaper.install(loop)
    try:
        server = Server(ShimService(Task("warmup", state_dir, reaper), lambda: None))
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sr, sw = await asyncio.open_unix_connection(sock=a)
        handler = asyncio.create_task(server.handle_connection(sr, sw))
        cr, cw = await asyncio.open_unix_connection(sock=b)
        client = ShimClient("warmup", cr, cw)
        await client.connect()
        await client.state()
        for call in (client.start(), client.pause(), client.resume(), client.kill(15), client.stats(),
                     client.pids(), client.delete(), client.stop(15, 0),
                     client.exec(shim_pb2.ExecRequest(args=["true"])),
                     client.create(shim_pb2.CreateRequest(id="warmup", bundle=str(state_dir)))):
            with contextlib.suppress(errdefs.CtrdError):
                await call
        await client.close()
        handler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handler
    finally:
        reaper.uninstall()


def warm_up(rounds: int = 10) -> None:
    with tempfile.TemporaryDirectory(prefix="ctrd-warm-") as tmp:
        state = Path(tmp)
        for _ in range(rounds):  # bytecode is specialised after a few calls: do it here, not in each shim
            asyncio.run(_session(state))
        w = JsonFileWriter(state / "log", max_size=1, max_file=2)
        for msg in LineSplitter().feed(b"a\nb\n"):
            w.write("stdout", msg)
        w.close()
        files.write_json(state / files.EXIT_FILE, {"exit_status": 0})
        framing.decode(framing.encode(shim_pb2.Envelope(id=1))[4:])
        os.getpid()
