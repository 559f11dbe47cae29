"""Reading a container's json-file log (written by its shim): tail, since/until, follow.

Files: `<id>-json.log` (current) and `<id>-json.log.1 … .N` (older, rotated by the shim). Each line
is docker's `{"log": "...", "stream": "stdout|stderr", "time": "RFC3339Nano"}`. Follow mode polls
the current file (a reopen when it was rotated) and ends once the container is no longer running
and everything written has been sent. Between polls it sleeps on the container's `changed`
condition (when given), so the stream ends as soon as the exit is recorded instead of up to a
poll later: `ctrctl run`'s output is complete, and the command returns, that much sooner.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from ctrd.timefmt import parse_rfc3339

POLL = 0.1


@dataclass(frozen=True, slots=True)
class LogEntry:
    stream: str
    data: bytes
    time: str
    ts: float
    attrs: tuple[tuple[str, str], ...] = ()  # the entry's "attrs" (docker logs --details)


@dataclass(frozen=True, slots=True)
class LogQuery:
    tail: int = -1  # -1 = all
    since: float = 0.0
    until: float = 0.0
    stdout: bool = True
    stderr: bool = True
    follow: bool = False


def _parse(line: bytes) -> LogEntry | None:
    try:
        d = json.loads(line)
        t = str(d.get("time", ""))
        attrs = d.get("attrs") or {}
        return LogEntry(str(d.get("stream", "stdout")), str(d.get("log", "")).encode(), t, parse_rfc3339(t),
                        tuple(sorted((str(k), str(v)) for k, v in attrs.items())))
    except (ValueError, AttributeError):
        return None  # a torn last line (writer mid-write) or garbage: skip


def _wanted(e: LogEntry, q: LogQuery) -> bool:
    if e.stream == "stdout" and not q.stdout:
        return False
    if e.stream == "stderr" and not q.stderr:
        return False
    if q.since and e.ts < q.since:
        return False
    return not (q.until and e.ts > q.until)


def log_files(path: Path) -> list[Path]:
    """Oldest first: .N … .1, then the current file."""
    rotated = []
    i = 1
    while (p := path.with_name(f"{path.name}.{i}")).exists():
        rotated.append(p)
        i += 1
    return [*reversed(rotated), path]


def read_existing(path: Path, q: LogQuery) -> tuple[list[LogEntry], int, int]:
    """Everything already written that matches; plus (inode, offset) of the current file's end."""
    keep: deque[LogEntry] = deque(maxlen=q.tail if q.tail >= 0 else None)
    inode, offset = 0, 0
    for p in log_files(path):
        try:
            with open(p, "rb") as f:
                data = f.read()
                st = os.fstat(f.fileno())
        except FileNotFoundError:
            continue
        end = data.rfind(b"\n") + 1  # an unfinished last line is read by the follower later
        for line in data[:end].splitlines():
            e = _parse(line)
            if e is not None and _wanted(e, q):
                keep.append(e)
        if p == path:
            inode, offset = st.st_ino, end
    return list(keep), inode, offset


async def read_logs(path: Path, q: LogQuery, running: Callable[[], bool],
                    changed: asyncio.Condition | None = None) -> AsyncIterator[LogEntry]:
    """`changed` is notified on every state change; the shim drains the container's output into
    the file before its exit is recorded, so one pass after `running()` turns false gets the tail."""
    entries, inode, offset = await asyncio.to_thread(read_existing, path, q)
    for e in entries:
        yield e
    if not q.follow:
        return
    buf = b""
    while True:
        alive = running()  # sampled before reading: a final pass after the exit catches the tail
        chunk, inode, offset, rotated = await asyncio.to_thread(_read_more, path, inode, offset)
        if rotated:
            buf = b""
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            got = _parse(line)
            if got is not None and _wanted(got, q):
                if q.until and got.ts > q.until:
                    return
                yield got
        if not alive and not chunk:
            return
        if not chunk:
            await _pause(running, changed)


async def _pause(running: Callable[[], bool], changed: asyncio.Condition | None) -> None:
    """Until the next poll, or until the container stops running (whichever is first)."""
    if changed is None:
        await asyncio.sleep(POLL)
        return
    async with changed:
        try:
            await asyncio.wait_for(changed.wait_for(lambda: not running()), POLL)
        except TimeoutError:
            pass


def _read_more(path: Path, inode: int, offset: int) -> tuple[bytes, int, int, bool]:
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed by the with below; opening may fail on its own)
    except FileNotFoundError:
        return b"", inode, offset, False
    with f:
        st = os.fstat(f.fileno())
        rotated = False
        if st.st_ino != inode or st.st_size < offset:
            # rotated: the rest of the old file is in .1 now; read what's left there first
            rest = b""
            rotated = True  # unless the old file's remainder is found, drop the partial line
            old = path.with_name(path.name + ".1")
            if inode and st.st_ino != inode:
                try:
                    with open(old, "rb") as o:
                        if os.fstat(o.fileno()).st_ino == inode:
                            o.seek(offset)
                            rest = o.read()
                            rotated = False
                except FileNotFoundError:
                    pass
            inode, offset = st.st_ino, 0
            f.seek(0)
            data = f.read(4 << 20)
            return rest + data, inode, offset + len(data), rotated
        f.seek(offset)
        data = f.read(4 << 20)
        return data, inode, offset + len(data), rotated
