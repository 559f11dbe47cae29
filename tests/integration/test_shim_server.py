"""The shim socket server and the daemon-side client, with a fake service (no container)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ctrd import errdefs
from ctrd.shim import framing
from ctrd.shim.v1 import shim_pb2
from daemon.shims.client import ShimClient
from shimd.server import Server


class FakeService:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.waiting = asyncio.Event()  # a Wait call has reached the service
        self.methods: dict[str, tuple[type, Callable[[Any], Awaitable[Any]]]] = {
            "State": (shim_pb2.StateRequest, self.state),
            "Wait": (shim_pb2.WaitRequest, self.wait),
            "Kill": (shim_pb2.KillRequest, self.kill),
        }

    async def state(self, req: shim_pb2.StateRequest) -> shim_pb2.StateResponse:
        return shim_pb2.StateResponse(id="c1", pid=42, status=shim_pb2.STATUS_RUNNING)

    async def wait(self, req: shim_pb2.WaitRequest) -> shim_pb2.WaitResponse:
        self.waiting.set()
        await self.release.wait()
        return shim_pb2.WaitResponse(exit_status=3)

    async def kill(self, req: shim_pb2.KillRequest) -> shim_pb2.KillResponse:
        raise errdefs.FailedPrecondition("cannot kill container c1: it is stopped", reason="why")


async def serve(path: Path) -> tuple[Server, FakeService]:
    """The server on asyncio's stock loop (the client shares it); real shims serve on
    shimd.loop.ShimLoop, covered by the shim lifecycle and fault tests."""
    svc = FakeService()
    server = Server(svc)  # type: ignore[arg-type]
    server.listen(str(path))
    return server, svc


def run(coro_fn: Callable[[Path], Awaitable[None]], tmp: Path) -> None:
    asyncio.run(asyncio.wait_for(coro_fn(tmp / "s.sock"), 30))


def test_concurrent_calls_on_one_connection(short_tmp: Path) -> None:
    async def go(sock: Path) -> None:
        srv, svc = await serve(sock)
        c = await ShimClient.connect(f"unix://{sock}")
        waiting = asyncio.create_task(c.wait())
        st = await c.state()  # answered while Wait is still in flight
        assert (st.id, st.pid) == ("c1", 42)
        assert not waiting.done()
        svc.release.set()
        assert (await waiting).exit_status == 3
        await c.close()
        srv.close()

    run(go, short_tmp)


def test_errors_keep_class_message_and_reason(short_tmp: Path) -> None:
    async def go(sock: Path) -> None:
        srv, _ = await serve(sock)
        c = await ShimClient.connect(str(sock))
        with pytest.raises(errdefs.FailedPrecondition, match="c1") as ei:
            await c.kill(9)
        assert ei.value.reason == "why"
        with pytest.raises(errdefs.InvalidArgument, match="Pause"):
            await c.pause()  # not served by the fake: unknown method
        assert (await c.state()).pid == 42  # the connection survives answered errors
        await c.close()
        srv.close()

    run(go, short_tmp)


@pytest.mark.parametrize("garbage", [
    struct.pack(">I", framing.MAX_FRAME + 1),  # oversized
    struct.pack(">I", 4) + b"\xff\xff\xff\xff",  # does not parse
])
def test_bad_frame_closes_only_that_connection(short_tmp: Path, garbage: bytes) -> None:
    async def go(sock: Path) -> None:
        srv, _ = await serve(sock)
        good = await ShimClient.connect(str(sock))
        reader, writer = await asyncio.open_unix_connection(str(sock))
        writer.write(garbage)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
        writer.close()
        assert (await good.state()).id == "c1"
        await good.close()
        srv.close()

    run(go, short_tmp)


def test_connection_lost_mid_call_is_unavailable(short_tmp: Path) -> None:
    async def go(sock: Path) -> None:
        srv, svc = await serve(sock)
        c = await ShimClient.connect(str(sock))
        waiting = asyncio.create_task(c.wait())
        await svc.waiting.wait()  # the call is in flight on the server
        srv.close()
        # closing the listener leaves accepted connections; drop ours from the server side
        srv.drop_connections()
        with pytest.raises(errdefs.Unavailable):
            await waiting
        with pytest.raises(errdefs.Unavailable):
            await c.state()
        await c.close()

    run(go, short_tmp)


def test_connect_to_nothing_is_unavailable(short_tmp: Path) -> None:
    async def go(sock: Path) -> None:
        with pytest.raises(errdefs.Unavailable):
            await ShimClient.connect(f"unix://{sock}", timeout=1.0)

    run(go, short_tmp)
