"""The shim's socket server: framed Envelopes in, handler calls, framed Envelopes out.

It works on plain non-blocking sockets and the loop's add_reader/add_writer (no asyncio streams
or transports: see shimd.loop for why), so it runs on the shim's own loop and, in tests, on
asyncio's stock loop alike.

Each request runs as its own asyncio task, so one connection can have many calls in flight (a
Wait that blocks for hours next to State calls). A frame that is too large or does not parse
closes that connection only; a payload that does not parse, or an unknown method, is answered
with an invalid_argument error.
"""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import logging
import os
import socket

from google.protobuf.message import DecodeError

from ctrd import errdefs
from ctrd.shim import framing
from ctrd.shim.v1 import shim_pb2
from shimd.service import ShimService

log = logging.getLogger("ctrd-shim")

RECV_SIZE = 64 * 1024
HIGH_WATER = 256 * 1024  # a caller's drain() waits while more than this is queued for one peer


class _Conn:
    """One accepted connection: an input buffer cut into frames, an output queue. It works on the
    bare fd with os.read/os.write (no socket objects: socket.py's wrapper layer is code each
    shim would run)."""

    def __init__(self, server: Server, fd: int) -> None:
        self.server = server
        self.fd = fd
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.closed = False
        self._flushed: list[asyncio.Future[None]] = []
        server.loop.add_reader(self.fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.fd, RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("closing connection: %s", exc)
            self.close()
            return
        if not data:
            self.close()
            return
        self.inbuf += data
        try:
            frames = framing.take_frames(self.inbuf)
        except framing.FrameError as exc:
            log.warning("closing connection: %s", exc)
            self.close()
            return
        for env in frames:
            self.server.spawn(env, self)

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if not self.outbuf:
            try:
                sent = os.write(self.fd, data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.close()
                return
            if sent == len(data):
                return
            data = data[sent:]
            self.server.loop.add_writer(self.fd, self._on_writable)
        self.outbuf += data

    def _on_writable(self) -> None:
        try:
            sent = os.write(self.fd, self.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        del self.outbuf[:sent]
        if not self.outbuf:
            self.server.loop.remove_writer(self.fd)
            self._wake()

    async def drain(self, high_water: int = HIGH_WATER) -> None:
        """Wait while more than `high_water` bytes are queued (0: until all of it went out)."""
        if len(self.outbuf) > high_water and not self.closed:
            fut = self.server.loop.create_future()
            self._flushed.append(fut)
            await fut

    def _wake(self) -> None:
        waiters, self._flushed = self._flushed, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        loop = self.server.loop
        loop.remove_reader(self.fd)
        loop.remove_writer(self.fd)
        os.close(self.fd)
        self.outbuf.clear()
        self._wake()
        self.server.conns.discard(self)


class Server:
    def __init__(self, service: ShimService) -> None:
        self.service = service
        self.conns: set[_Conn] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: _socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def listen(self, path: str) -> None:
        """Serve on a new unix socket at `path` (call with the loop running)."""
        sock = _socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            sock.bind(path)
            sock.listen(socket.SOMAXCONN)
        except BaseException:
            sock.close()
            raise
        self._listener = sock
        self.loop.add_reader(sock.fileno(), self._on_accept)

    def serve_socket(self, sock: socket.socket) -> None:
        """Serve one already connected socket (the launcher's warm-up drives a socketpair)."""
        sock.setblocking(False)
        self.serve_fd(sock.detach())

    def serve_fd(self, fd: int) -> None:
        """Serve one connected, non-blocking socket fd (the server owns it from now on)."""
        self.conns.add(_Conn(self, fd))

    def _on_accept(self) -> None:
        assert self._listener is not None
        for _ in range(16):
            try:
                fd, _addr = self._listener._accept()  # type: ignore[attr-defined]  # the C accept: a bare CLOEXEC fd
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: try again on the next wake-up
                log.warning("accept: %s", exc)
                return
            os.set_blocking(fd, False)
            self.serve_fd(fd)

    def close(self) -> None:
        """Stop accepting; connections already accepted stay open (like asyncio's Server.close)."""
        sock, self._listener = self._listener, None
        if sock is not None:
            self.loop.remove_reader(sock.fileno())
            sock.close()

    def drop_connections(self) -> None:
        for conn in list(self.conns):
            conn.close()

    def spawn(self, env: shim_pb2.Envelope, conn: _Conn) -> None:
        t = self.loop.create_task(self._dispatch(env, conn))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

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

    async def _dispatch(self, env: shim_pb2.Envelope, conn: _Conn) -> None:
        try:
            out = shim_pb2.Envelope(id=env.id, payload=await self.call(env.method, env.payload))
        except errdefs.CtrdError as err:
            out = framing.error_envelope(env.id, err)
        except Exception as exc:
            log.exception("%s failed", env.method)
            out = framing.error_envelope(env.id, errdefs.Internal(f"{env.method}: {exc}"))
        try:
            data = framing.encode(out)
        except framing.FrameError as exc:
            data = framing.encode(framing.error_envelope(env.id, errdefs.Internal(str(exc))))
        conn.send(data)
        await conn.drain()

    async def quiesce(self, timeout: float) -> None:
        """Let in-flight calls finish and their responses go out (before the shim exits)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        for conn in list(self.conns):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.drain(0), timeout)
