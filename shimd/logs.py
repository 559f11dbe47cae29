"""Container stdout/stderr -> docker's json-file log, with docker's line splitting and rotation.

Format (moby jsonfilelog): one JSON object per line, `{"log":"...","stream":"stdout","time":"..."}`,
time in RFC3339Nano (UTC, trailing zeros of the fraction trimmed). A line is emitted with its
trailing "\\n"; a line longer than 16 KiB is cut into 16 KiB partial entries that carry no "\\n",
the last piece carries it (docker's copier buffer). Rotation: before a write, when the current file
is at or above max-size, log -> log.1 -> ... -> log.<max-file - 1> (the oldest falls off).

Back-pressure: the pump reads the pipe only from the loop's reader callback and writes to the
file synchronously inside it, so while a write is in progress nothing more is read and a
container that writes faster than the disk blocks on its full pipe instead of losing lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring
from pathlib import Path

from ctrd.timefmt import rfc3339_nano

log = logging.getLogger("ctrd-shim")

MAX_LINE = 16 * 1024
_IOV_MAX = 1024
_BATCH = 64 * 1024  # bytes of entries per writev in the per-entry path
READ_SIZE = 64 * 1024  # below malloc's mmap threshold: a larger read costs a fresh mmap and its page faults each time


def format_entry(log: bytes, stream: str, ns: int, attrs: str = "") -> bytes:
    """One json-file line, as json.dumps(ensure_ascii=False, separators=(",", ":")) writes it,
    built with the encoder's C string quoting only (json.dumps with those options constructs a new
    encoder per call: per log line, and more code for each shim to run). `attrs` is the
    `,"attrs":{...}` fragment (attrs_fragment), where docker puts it: before "time"."""
    return next(_entries([log], stream, ns, attrs))


def _entries(messages: list[bytes], stream: str, ns: int, attrs: str) -> Iterator[bytes]:
    """The json-file lines of messages read together (one read: one time stamp, as close as
    docker's per-line clock gets), one bytes each (one f-string each: cheaper than joins), made
    as they are written: a read's worth alive at once grows and trims malloc's heap (page faults)
    on every read."""
    tail = f',"stream":{encode_basestring(stream)}{attrs},"time":"{rfc3339_nano(ns)}"}}\n'
    for m in messages:
        yield f'{{"log":{encode_basestring(m.decode("utf-8", errors="replace"))}{tail}'.encode()


def attrs_fragment(attrs: dict[str, str]) -> str:
    """The entries' `,"attrs":{...}` (keys sorted), built once per log; "" for none."""
    if not attrs:
        return ""
    body = ",".join(f"{encode_basestring(k)}:{encode_basestring(v)}" for k, v in sorted(attrs.items()))
    return f',"attrs":{{{body}}}'


class LineSplitter:
    """Cuts a byte stream into docker log messages: whole lines, or partial 16 KiB chunks."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._max = max_line
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Scans by index (no copy of the rest per line: a 1 MiB read of short lines stays linear)."""
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        start, end, cap = 0, len(buf), self._max
        find = buf.find
        while True:
            nl = find(b"\n", start, start + cap)
            if nl != -1:
                out.append(buf[start:nl + 1])
                start = nl + 1
            elif end - start >= cap:
                out.append(buf[start:start + cap])
                start += cap
            else:
                self._buf = buf[start:]
                return out

    def take_lines(self, data: bytes) -> bytes | None:
        """The fast path of `feed`: the whole lines of (buffered + data) as one block, when none of
        them is cut (every line is shorter than the cap) and what stays is shorter than the cap;
        None when `feed` must cut, and then nothing was taken."""
        buf = self._buf + data if self._buf else data
        last = buf.rfind(b"\n")
        if last < 0 or len(buf) - last - 1 >= self._max:
            return None
        body = buf[:last + 1] if last + 1 < len(buf) else buf
        if len(body) >= self._max and max(map(len, body.split(b"\n"))) >= self._max:
            return None
        self._buf = buf[last + 1:]
        return body

    def flush(self) -> list[bytes]:
        rest, self._buf = self._buf, b""
        return [rest] if rest else []


class JsonFileWriter:
    """One log file shared by the stdout and stderr pumps of a container. Str paths and os calls
    (no pathlib): every shim runs this, and each distinct function it runs costs it pages."""

    def __init__(self, path: str | Path, max_size: int = 0, max_file: int = 1, attrs: str = "") -> None:
        self.path = os.fspath(path)
        self.attrs = attrs
        self.max_size = max_size
        self.max_file = max(1, max_file)
        parent = self.path.rpartition("/")[0]
        if parent and not os.access(parent, os.F_OK):
            os.makedirs(parent, exist_ok=True)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def write(self, stream: str, message: bytes, ns: int | None = None) -> None:
        self.write_many(stream, [message], ns)

    def write_many(self, stream: str, messages: list[bytes], ns: int | None = None) -> None:
        """The entries of one read, in as few writes as rotation allows (rotation is still checked
        before every entry, as docker does)."""
        if self._fd < 0 or not messages:
            return
        batch: list[bytes] = []
        pending = 0
        for entry in _entries(messages, stream, time.time_ns() if ns is None else ns, self.attrs):
            if self.max_size > 0 and self._size + pending >= self.max_size:
                self._put(batch)
                batch, pending = [], 0
                self._rotate()
            batch.append(entry)
            pending += len(entry)
            if pending >= _BATCH:  # small entries go out together, a large one alone
                self._put(batch)
                batch, pending = [], 0
        self._put(batch)

    def write_lines(self, stream: str, body: bytes, ns: int | None = None) -> None:
        """Whole lines (each ending in "\\n", none over the cap), one entry each, escaped with one
        C call for the block instead of one per line: without a backslash in the input, the
        escaped block's only `\\n` are its newlines, so splitting there gives each line's
        escaping, as per-line calls would (a newline byte is never inside a UTF-8 sequence, so
        decoding the block is decoding each line)."""
        if self._fd < 0 or not body:
            return
        if b"\\" in body:
            self.write_many(stream, [m + b"\n" for m in body.split(b"\n")[:-1]], ns)
            return
        head = '{"log":"'
        tail = (f'\\n","stream":{encode_basestring(stream)}{self.attrs},'
                f'"time":"{rfc3339_nano(time.time_ns() if ns is None else ns)}"}}\n')
        esc = encode_basestring(body.decode("utf-8", errors="replace"))[1:-3]  # no quotes, no last \n
        out = (head + esc.replace("\\n", tail + head) + tail).encode()
        if self.max_size > 0 and self._size + len(out) >= self.max_size:  # a rotation falls inside
            self.write_many(stream, [m + b"\n" for m in body.split(b"\n")[:-1]], ns)
            return
        self._put([out])

    def _put(self, entries: list[bytes]) -> None:
        if not entries:
            return
        for i in range(0, len(entries), _IOV_MAX):
            group = entries[i:i + _IOV_MAX]
            want = sum(map(len, group))
            n = os.writev(self._fd, group)
            self._size += n
            if n < want:  # short (a regular file only when it cannot take more): the rest one by one
                rest = memoryview(b"".join(group))[n:]
                while rest:
                    k = os.write(self._fd, rest)
                    rest = rest[k:]
                    self._size += k

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.max_file > 1:
            for i in range(self.max_file - 1, 0, -1):
                src = self.path if i == 1 else f"{self.path}.{i - 1}"
                if os.access(src, os.F_OK):
                    os.replace(src, f"{self.path}.{i}")
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        self._fd = self._open()
        self._size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class LogPump:
    """Copies one pipe (the read end of a container's stdout or stderr) into the writer."""

    def __init__(self, fd: int, stream: str, writer: JsonFileWriter | None,
                 tap: Callable[[str, bytes], None] | None = None) -> None:
        self.fd = fd
        self.stream = stream
        self.writer = writer
        self.tap = tap  # attached clients (shimd.attach): given the bytes after the log has them
        self._split = LineSplitter()
        self._failed = False
        self._loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self._loop.create_future()
        os.set_blocking(fd, False)
        self._loop.add_reader(fd, self._on_readable)

    def _emit(self, messages: list[bytes]) -> None:
        if self.writer is None:
            return
        try:
            self.writer.write_many(self.stream, messages)
        except OSError as exc:  # disk full, log dir removed: keep draining the pipe, say so once
            if not self._failed:
                log.warning("log %s: %s", self.writer.path, exc)
                self._failed = True

    def _emit_lines(self, body: bytes) -> None:
        assert self.writer is not None
        try:
            self.writer.write_lines(self.stream, body)
        except OSError as exc:
            if not self._failed:
                log.warning("log %s: %s", self.writer.path, exc)
                self._failed = True

    def _on_readable(self) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            if self.writer is not None:  # an exec's output goes to its clients only: nothing to split
                body = self._split.take_lines(data)
                if body is not None:
                    self._emit_lines(body)
                else:
                    self._emit(self._split.feed(data))
            if self.tap is not None:
                self.tap(self.stream, data)
        else:
            self.close()

    def pause(self) -> None:
        """Stop reading for now (the pipe fills and its writer waits): back-pressure."""
        if not self.done.done():
            self._loop.remove_reader(self.fd)

    def resume(self) -> None:
        if not self.done.done():
            self._loop.add_reader(self.fd, self._on_readable)

    def close(self) -> None:
        """Stop reading; what was buffered is written as a final partial line."""
        if self.done.done():
            return
        self._loop.remove_reader(self.fd)
        os.close(self.fd)
        self._emit(self._split.flush())
        self.done.set_result(None)
