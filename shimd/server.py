"""The shim's socket server: framed Envelopes in, handler calls, framed Envelopes out.

Each request runs as its own asyncio task, so one connection can have many calls in flight (a
Wait that blocks for hours next to State calls). A frame that is too large or does not parse
closes that connection only; a payload that does not parse, or an unknown method, is answered
with an invalid_argument error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from google.protobuf.message import DecodeError

from ctrd import errdefs
from ctrd.shim.v1 import shim_pb2
from shimd import framing
from shimd.service import ShimService

log = logging.getLogger("ctrd-shim")


class Server:
    def __init__(self, service: ShimService) -> None:
        self.service = service
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                env = await framing.read_frame(reader)
                if env is None:
                    return
                t = asyncio.create_task(self._dispatch(env, writer))
                self._tasks.add(t)
                t.add_done_callback(self._tasks.discard)
        except (framing.FrameError, ConnectionError) as exc:
            log.warning("closing connection: %s", exc)
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def call(self, method: str, payload: bytes) -> bytes:
        """Run one method on serialized bytes (raises errdefs errors)."""
        entry = self.service.methods.get(method)
        if entry is None:
            raise errdefs.InvalidArgument(f"method: unknown shim method {method!r}")
        req_type, handler = entry
        req = req_type()
        try:
            req.ParseFromString(payload)
        except DecodeError as exc:
            raise errdefs.InvalidArgument(f"payload: malformed {method} request: {exc}") from exc
        resp = await handler(req)
        return resp.SerializeToString()

    async def _dispatch(self, env: shim_pb2.Envelope, writer: asyncio.StreamWriter) -> None:
        try:
            out = shim_pb2.Envelope(id=env.id, payload=await self.call(env.method, env.payload))
        except errdefs.CtrdError as err:
            out = framing.error_envelope(env.id, err)
        except Exception as exc:
            log.exception("%s failed", env.method)
            out = framing.error_envelope(env.id, errdefs.Internal(f"{env.method}: {exc}"))
        if writer.is_closing():
            return
        try:
            writer.write(framing.encode(out))
            await writer.drain()
        except framing.FrameError as exc:
            writer.write(framing.encode(framing.error_envelope(env.id, errdefs.Internal(str(exc)))))
        except ConnectionError:
            pass

    async def quiesce(self, timeout: float) -> None:
        """Let in-flight calls finish and their responses go out (before the shim exits)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                await w.drain()
