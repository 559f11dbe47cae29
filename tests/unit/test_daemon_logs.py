"""The json-file log reader: tail, since/until, stream selection, follow across rotation."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from ctrd.timefmt import rfc3339
from daemon.logs import LogEntry, LogQuery, read_logs

T0 = 1_700_000_000.0


def line(i: int, stream: str = "stdout", t: float | None = None) -> bytes:
    ts = rfc3339(T0 + i if t is None else t)
    return json.dumps({"log": f"line {i}\n", "stream": stream, "time": ts}).encode() + b"\n"


def read(path: Path, q: LogQuery, running: object = lambda: False) -> list[LogEntry]:
    async def main() -> list[LogEntry]:
        return [e async for e in read_logs(path, q, running)]  # type: ignore[arg-type]

    return asyncio.run(main())


def test_tail_since_until_and_streams(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    log.with_name("c-json.log.1").write_bytes(b"".join(line(i) for i in range(0, 5)))
    log.write_bytes(b"".join(line(i, "stderr" if i % 2 else "stdout") for i in range(5, 10)) + b'{"log": "torn')
    everything = read(log, LogQuery())
    assert [e.data for e in everything] == [f"line {i}\n".encode() for i in range(10)]
    assert [e.data for e in read(log, LogQuery(tail=3))] == [b"line 7\n", b"line 8\n", b"line 9\n"]
    assert read(log, LogQuery(tail=0)) == []
    assert [e.data for e in read(log, LogQuery(since=T0 + 8))] == [b"line 8\n", b"line 9\n"]
    assert [e.data for e in read(log, LogQuery(until=T0 + 1))] == [b"line 0\n", b"line 1\n"]
    assert {e.stream for e in read(log, LogQuery(stdout=False))} == {"stderr"}
    assert all(e.stream == "stdout" for e in read(log, LogQuery(stderr=False)))


def test_missing_log_is_empty(tmp_path: Path) -> None:
    assert read(tmp_path / "nope.log", LogQuery()) == []


def test_follow_sees_new_lines_and_rotation_and_ends_when_stopped(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    log.write_bytes(line(0))
    state = {"running": True}

    out: list[LogEntry] = []

    async def seen(n: int) -> None:  # the follower has emitted n entries
        while len(out) < n:
            await asyncio.sleep(0.01)

    async def writer() -> None:
        await seen(1)
        with open(log, "ab") as f:
            f.write(line(1))
            f.write(line(2)[:20])  # a partial line: must not be emitted until complete
        await seen(2)
        with open(log, "ab") as f:
            f.write(line(2)[20:])
        await seen(3)
        os.rename(log, log.with_name("c-json.log.1"))  # the shim rotates
        log.write_bytes(line(3))
        await seen(4)
        state["running"] = False

    async def main() -> list[LogEntry]:
        w = asyncio.create_task(writer())
        async for e in read_logs(log, LogQuery(follow=True), lambda: state["running"]):
            out.append(e)
        await w
        return out

    got = asyncio.run(asyncio.wait_for(main(), 10))
    assert [e.data for e in got] == [b"line 0\n", b"line 1\n", b"line 2\n", b"line 3\n"]


def test_follow_ends_when_the_exit_is_notified_not_a_poll_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import daemon.logs as logs_mod

    log = tmp_path / "c-json.log"
    log.write_bytes(line(0))
    state = {"running": True}
    monkeypatch.setattr(logs_mod, "POLL", 30.0)  # only the notification can end the stream in time

    async def main() -> tuple[list[LogEntry], float]:
        changed = asyncio.Condition()

        async def exits() -> None:
            await asyncio.sleep(0.2)
            with open(log, "ab") as f:
                f.write(line(1))  # written before the exit is recorded (the shim drains first)
            state["running"] = False
            async with changed:
                changed.notify_all()

        w = asyncio.create_task(exits())
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        out = [e async for e in read_logs(log, LogQuery(follow=True), lambda: state["running"], changed)]
        await w
        return out, loop.time() - t0

    got, took = asyncio.run(asyncio.wait_for(main(), 20))
    assert [e.data for e in got] == [b"line 0\n", b"line 1\n"]
    assert took < 10.0
