"""Bytes produced by blocking code in a thread, consumed as an async iterator (and the reverse).

The queue is bounded, so a slow reader holds the producer back; a reader that goes away (a
client that disconnected) makes the producer's next write fail, which ends its thread.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO, cast

CHUNK = 1 << 20
_DONE = object()


class Cancelled(Exception):
    pass


class _QueueWriter:
    def __init__(self, q: queue.Queue[object], cancelled: threading.Event) -> None:
        self.q = q
        self.cancelled = cancelled
        self.buf = bytearray()

    def put(self, item: object) -> None:
        while True:
            if self.cancelled.is_set():
                raise Cancelled("the reader went away")
            try:
                self.q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def write(self, data: bytes) -> int:
        if not self.buf and len(data) >= CHUNK:
            self.put(bytes(data))  # a file's big block goes as it is
            return len(data)
        self.buf += data
        if len(self.buf) >= CHUNK:
            self.put(bytes(self.buf))
            self.buf.clear()
        return len(data)

    def flush(self) -> None:
        if self.buf:
            self.put(bytes(self.buf))
            self.buf.clear()


async def produce(fn: Callable[[BinaryIO], None], depth: int = 8) -> AsyncIterator[bytes]:
    """Run `fn(writer)` in a thread; yield what it writes, in chunks of about CHUNK bytes."""
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    cancelled = threading.Event()
    w = _QueueWriter(q, cancelled)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            fn(cast(BinaryIO, w))
            w.flush()
        except BaseException as exc:  # handed to the reader
            failure.append(exc)
        finally:
            try:
                w.put(_DONE)
            except Cancelled:
                pass

    thread = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        while True:
            item = await asyncio.to_thread(q.get)
            if item is _DONE:
                break
            yield cast(bytes, item)
        await thread
        if failure and not isinstance(failure[0], Cancelled):
            raise failure[0]
    finally:
        cancelled.set()
        while not thread.done():
            try:
                q.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.05)


class QueueReader:
    """A blocking reader (for tarfile in a thread) of chunks an async side feeds in."""

    def __init__(self, depth: int = 8) -> None:
        self.q: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self.cur = b""
        self.pos = 0
        self.eof = False

    def read(self, n: int = -1) -> bytes:
        parts: list[bytes] = []
        want = n
        while want != 0:
            if self.pos >= len(self.cur):
                if self.eof:
                    break
                chunk = self.q.get()
                if chunk is None:
                    self.eof = True
                    break
                self.cur, self.pos = chunk, 0
                continue
            left = len(self.cur) - self.pos
            take = left if want < 0 else min(want, left)
            parts.append(self.cur[self.pos : self.pos + take])
            self.pos += take
            if want > 0:
                want -= take
        return b"".join(parts)

    def drain(self) -> None:
        """After an error: swallow whatever is still coming so the feeding side never blocks."""
        self.eof = True
        while True:
            try:
                self.q.get_nowait()
            except queue.Empty:
                return


async def feed(chunks: AsyncIterator[bytes], reader: QueueReader, consumer: asyncio.Future[None]) -> None:
    """Put `chunks` into `reader` until they end or `consumer` (the thread reading) finished early."""
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            while True:
                if consumer.done():
                    return
                try:
                    reader.q.put_nowait(chunk)
                    break
                except queue.Full:
                    await asyncio.sleep(0.005)
    finally:
        while not consumer.done():
            try:
                reader.q.put_nowait(None)
                break
            except queue.Full:
                await asyncio.sleep(0.005)
