"""One attached client ↔ one process's attach socket in its shim (`<shim state dir>/io.sock`).

Shared by the container Attach stream and the exec streams. The whole interface:

    keys = parse_detach_keys(spec)            # docker's syntax; InvalidArgument naming "detach-keys"
    io = await connect(path)                  # optional: connect early (before the process starts,
                                              # so the very first bytes are seen); Unavailable if absent
    async for resp in relay(io_or_path, opts, tty, requests, started=True):
        ...                                   # pb.AttachResponse

`relay` yields AttachStarted (unless `started=False`: the caller already said it), then output
frames (stream "stdout"/"stderr", filtered by opts.stdout/opts.stderr), and ends with exactly one
AttachExit (the process exited) or `detached` (detach keys, or a `detach` request). `requests` are
the client's AttachRequests after its AttachOpen: stdin bytes (only if opts.stdin), stdin_eof (the
end of the request stream counts as one), resize, detach. Detach keys are checked only with a tty
and forwarded stdin (docker's rule); bytes that could begin the sequence are held back until the
sequence is decided. A client that goes away (the stream is cancelled) only closes this
connection: the process, its log and the other clients go on (the shim owns them). A shim that
closes the connection without an exit (it cut off a client that fell behind, or it died) ends the
relay with Unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncGenerator, AsyncIterable

from ctrd import detachkeys, errdefs
from ctrd.shim import attachwire
from ctrd.v1 import container_pb2 as pb

DEFAULT_DETACH_KEYS = detachkeys.DEFAULT
MAX_TTY_SIZE = 10000  # rows or columns; the shim refuses more too
_READ_SIZE = 256 * 1024
CONNECT_TIMEOUT = 10.0  # a shim that accepts nobody for this long is as good as gone
_QUEUE = 16  # responses waiting for the client: beyond this the shim socket is no longer read


def parse_detach_keys(spec: str) -> bytes:
    """docker's detach-keys syntax (ctrd.detachkeys): comma-separated keys, each one character or
    `ctrl-<x>` with x in a-z @ [ \\ ] ^ _; "" means the default ctrl-p,ctrl-q."""
    return detachkeys.parse(spec)


def check_size(rows: int, cols: int) -> None:
    if not (1 <= rows <= MAX_TTY_SIZE and 1 <= cols <= MAX_TTY_SIZE):
        raise errdefs.InvalidArgument(
            f"size: {rows}x{cols} is not a terminal size (1..{MAX_TTY_SIZE} rows and columns)")


class EscapeFilter:
    """docker's escape proxy: passes stdin through, holding back bytes that may start the detach
    sequence; `feed` returns what to forward and whether the whole sequence was typed."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = 0  # how many bytes of `keys` are matched (and held back)

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            if b == self.keys[self.held]:
                self.held += 1
                if self.held == len(self.keys):
                    self.held = 0
                    return bytes(out), True
                continue
            if self.held:
                out += self.keys[:self.held]
                self.held = 0
                if b == self.keys[0]:
                    self.held = 1
                    continue
            out.append(b)
        return bytes(out), False


class ShimIO:
    """A connection to one process's attach socket.

    Stdin goes out through a dup of the socket, not through the stream's transport: a write that
    fails (the process exited and the shim closed while stdin was still coming) would make the
    transport close its read side too, and the reader would raise that error before returning
    the EXIT frame already received. A failed write fails only the stdin side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, out: socket.socket) -> None:
        self.reader = reader
        self.writer = writer  # only to close the transport
        self._out = out

    @classmethod
    async def over(cls, sock: socket.socket) -> ShimIO:
        """`sock`: connected and non-blocking; the ShimIO owns it."""
        out = sock.dup()
        try:
            reader, writer = await asyncio.open_unix_connection(sock=sock, limit=_READ_SIZE)
        except BaseException:
            out.close()
            raise
        return cls(reader, writer, out)

    async def send(self, kind: int, data: bytes = b"") -> None:
        loop = asyncio.get_running_loop()
        for i in range(0, max(len(data), 1), attachwire.MAX_FRAME):
            await loop.sock_sendall(self._out, attachwire.frame(kind, data[i:i + attachwire.MAX_FRAME]))

    async def close(self) -> None:
        self._out.close()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def connect(path: str) -> ShimIO:
    """A blocking connect in a thread: a non-blocking one to a unix socket whose listen backlog is
    full fails with EAGAIN, which asyncio takes for "in progress" and then for connected (the
    first read fails with EINVAL); a blocking one waits for the shim to accept, as it should when
    many clients attach at once."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(CONNECT_TIMEOUT)
    task = asyncio.ensure_future(asyncio.to_thread(sock.connect, path))
    try:
        await asyncio.shield(task)
        sock.setblocking(False)
        return await ShimIO.over(sock)
    except BaseException as exc:
        # the fd is closed once no thread is in connect() on it
        task.add_done_callback(lambda _: sock.close())
        if isinstance(exc, OSError):
            raise errdefs.Unavailable(
                f"attach: the shim's socket {path} is unreachable: {exc.strerror or exc}") from exc
        raise


_Item = pb.AttachResponse | BaseException


async def relay(conn: ShimIO | str, opts: pb.AttachOpen, tty: bool,
                requests: AsyncIterable[pb.AttachRequest], *, started: bool = True
                ) -> AsyncGenerator[pb.AttachResponse, None]:
    escape = EscapeFilter(parse_detach_keys(opts.detach_keys) if tty and opts.stdin else b"")
    io = conn if isinstance(conn, ShimIO) else await connect(conn)
    out: asyncio.Queue[_Item] = asyncio.Queue(_QUEUE)
    tasks = [asyncio.create_task(_from_shim(io, opts, out)),
             asyncio.create_task(_from_client(io, opts, escape, requests, out))]
    try:
        if started:
            yield pb.AttachResponse(started=pb.AttachStarted(tty=tty))
        while True:
            item = await out.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if item.WhichOneof("msg") in ("exit", "detached"):
                return
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await io.close()


async def _from_shim(io: ShimIO, opts: pb.AttachOpen, out: asyncio.Queue[_Item]) -> None:
    buf = bytearray()
    try:
        while True:
            data = await io.reader.read(_READ_SIZE)
            if not data:
                await out.put(errdefs.Unavailable("attach: the shim closed the connection before the process exited"))
                return
            buf += data
            frames = attachwire.take_frames(buf)
            # adjacent frames of one stream go out as one message (fewer, larger gRPC writes)
            run_kind, run = -1, list[bytes]()
            for kind, payload in frames:
                if kind in (attachwire.STDOUT, attachwire.STDERR):
                    if kind != run_kind and run:
                        await _put_output(out, opts, run_kind, run)
                        run = []
                    run_kind = kind
                    run.append(payload)
                    continue
                if run:
                    await _put_output(out, opts, run_kind, run)
                    run = []
                if kind == attachwire.EXIT:
                    await out.put(pb.AttachResponse(exit=pb.AttachExit(exit_code=attachwire.exit_status(payload))))
                    return
            if run:
                await _put_output(out, opts, run_kind, run)
    except (ValueError, OSError) as exc:
        await out.put(errdefs.Unavailable(f"attach: {exc}"))


async def _put_output(out: asyncio.Queue[_Item], opts: pb.AttachOpen, kind: int, run: list[bytes]) -> None:
    stream = "stderr" if kind == attachwire.STDERR else "stdout"
    if (opts.stderr if stream == "stderr" else opts.stdout):
        data = run[0] if len(run) == 1 else b"".join(run)
        await out.put(pb.AttachResponse(output=pb.AttachOutput(stream=stream, data=data)))


async def _from_client(io: ShimIO, opts: pb.AttachOpen, escape: EscapeFilter,
                       requests: AsyncIterable[pb.AttachRequest], out: asyncio.Queue[_Item]) -> None:
    eof_sent = False
    try:
        async for req in requests:
            kind = req.WhichOneof("msg")
            if kind == "stdin":
                if not opts.stdin or eof_sent:
                    continue
                data, detach = escape.feed(req.stdin)
                if data:
                    await io.send(attachwire.STDIN, data)
                if detach:
                    await out.put(pb.AttachResponse(detached=True))
                    return
            elif kind == "stdin_eof":
                if opts.stdin and not eof_sent:
                    eof_sent = True
                    await io.send(attachwire.STDIN_EOF)
            elif kind == "resize":
                check_size(req.resize.rows, req.resize.cols)
                await io.send(attachwire.RESIZE, struct.pack(">HH", req.resize.rows, req.resize.cols))
            elif kind == "detach":
                await out.put(pb.AttachResponse(detached=True))
                return
            elif kind == "open":
                raise errdefs.InvalidArgument("open: only the first request of an attach stream opens it")
        # the client closed its side of the stream: its stdin has ended
        if opts.stdin and not eof_sent:
            await io.send(attachwire.STDIN_EOF)
    except errdefs.CtrdError as exc:
        await out.put(exc)
    except OSError:
        pass  # the shim went away: _from_shim says so
