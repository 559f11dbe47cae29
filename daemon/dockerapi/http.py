"""HTTP/1.1 on asyncio streams with h11 (sans-IO): requests, JSON replies, chunked streams and
connection takeover.

Why not aiohttp or an ASGI server: docker's attach and exec start take the connection over
(`Upgrade: tcp` → 101, then raw bytes both ways) and the docker CLI half-closes its write side when
its stdin ends while it still reads the output. h11 leaves the socket to us, so both work: after a
101 the bytes h11 already read (`trailing_data`) are the first stdin bytes, and an EOF on the read
side ends only stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from ctrd.errdefs import InvalidArgument

READ_SIZE = 65536
MAX_HEADERS = 1 << 20


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_reply(obj: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(obj).encode() + b"\n")


def empty(status: int = 204) -> Reply:
    return Reply(status, b"", "")


class Conn:
    """One client connection: h11's state machine fed from an asyncio stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_headers: list[tuple[str, str]]) -> None:
        self.reader = reader
        self.writer = writer
        self.h = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
        self.server_headers = server_headers
        self.hijacked = False

    async def next_event(self) -> Any:
        while True:
            ev = self.h.next_event()
            if ev is h11.NEED_DATA:
                self.h.receive_data(await self.reader.read(READ_SIZE))
                continue
            return ev

    async def send(self, ev: Any) -> None:
        data = self.h.send(ev)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def watch_eof(self, task: asyncio.Task[Any]) -> None:
        """While a response streams: a client that goes away cancels the handler (events, logs -f)."""
        data = await self.reader.read(READ_SIZE)
        if data:
            self.h.receive_data(data)  # a pipelined next request: h11 keeps it for later
            return
        task.cancel()


class Request:
    def __init__(self, conn: Conn, ev: h11.Request) -> None:
        self.conn = conn
        self.method = ev.method.decode()
        target = ev.target.decode("latin-1")
        parts = urlsplit(target)
        self.path = unquote(parts.path)
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.headers = {k.decode().lower(): v.decode("latin-1") for k, v in ev.headers}
        self.params: dict[str, str] = {}
        self.api_version = ""
        self._body_done = False
        self.started = False  # a response (or a hijack) has been sent

    # ---------------------------------------------------------------- query

    def q(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def qbool(self, name: str, default: bool = False) -> bool:
        v = self.q(name)
        if v == "":
            return default if name not in self.query else False
        return v.lower() in ("1", "true", "yes")

    def qint(self, name: str, default: int | None = None) -> int | None:
        v = self.q(name)
        if v == "":
            return default
        try:
            return int(v)
        except ValueError:
            raise InvalidArgument(f"{name}: invalid integer {v!r}") from None

    def qjson(self, name: str) -> Any:
        v = self.q(name)
        if not v:
            return None
        try:
            return json.loads(v)
        except ValueError:
            raise InvalidArgument(f"{name}: invalid JSON") from None

    # ---------------------------------------------------------------- body

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self._body_done:
            ev = await self.conn.next_event()
            if isinstance(ev, h11.Data):
                yield bytes(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                self._body_done = True
            else:
                raise InvalidArgument("request body: connection ended early")

    async def body(self) -> bytes:
        return b"".join([c async for c in self.chunks()])

    async def json(self) -> Any:
        raw = await self.body()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise InvalidArgument(f"request body: invalid JSON: {exc}") from None

    async def drain(self) -> None:
        async for _ in self.chunks():
            pass

    # ---------------------------------------------------------------- answers

    def _headers(self, content_type: str, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
        out = list(self.conn.server_headers)
        if content_type:
            out.append(("Content-Type", content_type))
        return out + extra

    async def send(self, reply: Reply) -> None:
        await self.drain()
        self.started = True
        headers = self._headers(reply.content_type, reply.headers)
        if reply.status not in (204, 304):
            headers.append(("Content-Length", str(len(reply.body))))
        await self.conn.send(h11.Response(status_code=reply.status, headers=headers))
        if reply.body and self.method != "HEAD":
            await self.conn.send(h11.Data(data=reply.body))
        await self.conn.send(h11.EndOfMessage())

    async def stream(self, content_type: str = "application/json", status: int = 200,
                     headers: list[tuple[str, str]] | None = None) -> Stream:
        """Start a chunked response; the caller writes to it and closes it."""
        await self.drain()
        self.started = True
        await self.conn.send(h11.Response(status_code=status, headers=self._headers(content_type, headers or [])))
        task = asyncio.current_task()
        assert task is not None
        return Stream(self.conn, asyncio.ensure_future(self.conn.watch_eof(task)))

    async def hijack(self, content_type: str) -> Hijacked:
        """Take the connection over: 101 UPGRADED when the client asked for an upgrade, else 200 and
        raw bytes (docker's old behaviour). The request must have no body left to read."""
        await self.drain()
        self.started = True
        self.conn.hijacked = True
        upgrade = "upgrade" in self.headers.get("connection", "").lower() and "upgrade" in self.headers
        lines = ["HTTP/1.1 101 UPGRADED" if upgrade else "HTTP/1.1 200 OK"]
        lines += [f"{k}: {v}" for k, v in self._headers(content_type, [])]
        if upgrade:
            lines += ["Connection: Upgrade", f"Upgrade: {self.headers.get('upgrade', 'tcp')}"]
        self.conn.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await self.conn.writer.drain()
        pending, closed = self.conn.h.trailing_data
        return Hijacked(self.conn.reader, self.conn.writer, bytes(pending), closed)


class Stream:
    def __init__(self, conn: Conn, watcher: asyncio.Future[None]) -> None:
        self.conn = conn
        self.watcher = watcher

    async def write(self, data: bytes) -> None:
        if data:
            await self.conn.send(h11.Data(data=data))

    async def write_json(self, obj: Any) -> None:
        await self.write(json.dumps(obj).encode() + b"\n")

    async def close(self) -> None:
        await self.stop_watching()
        await self.conn.send(h11.EndOfMessage())

    async def stop_watching(self) -> None:
        """The watcher's read must be over before the connection reads the next request."""
        if not self.watcher.done():
            self.watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.watcher


@dataclass
class Hijacked:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pending: bytes  # bytes the client sent after the request, already read (stdin)
    closed: bool  # the client's write side had already ended

    async def read(self) -> bytes:
        """Client → server bytes; b"" once the client half-closed (or closed)."""
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        if self.closed:
            return b""
        try:
            return await self.reader.read(READ_SIZE)
        except ConnectionError:
            return b""

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.drain()
        self.writer.close()
