"""json-file logs: docker's format, 16 KiB splitting, rotation, and a pump that loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from shimd.logs import MAX_LINE, JsonFileWriter, LineSplitter, LogPump, attrs_fragment, format_entry


def entries(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_entry_format() -> None:
    line = format_entry(b"hi \xff\n", "stderr", 1_000_000_000)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"log": "hi \ufffd\n", "stream": "stderr", "time": "1970-01-01T00:00:01Z"}
    assert list(json.loads(line)) == ["log", "stream", "time"]


def test_entry_bytes_are_what_json_dumps_writes() -> None:
    """format_entry builds the line by hand: byte for byte what docker's json-file reader gets
    from json.dumps (non-ASCII kept, quotes, backslashes, control characters, U+2028, bad UTF-8)."""
    for raw in (b"plain\n", "h\u00e9 \"q\" \\ \x01 \u2028 \t\r\n".encode(), b"\xff\xfe bad utf-8", b"", "\U0001f600".encode()):
        for stream in ("stdout", "stderr"):
            line = format_entry(raw, stream, 1_700_000_000_000_000_001)
            ref = {"log": raw.decode("utf-8", errors="replace"), "stream": stream, "time": "2023-11-14T22:13:20.000000001Z"}
            assert line == json.dumps(ref, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def test_splitter_whole_lines_across_feeds() -> None:
    s = LineSplitter()
    assert s.feed(b"a\nb") == [b"a\n"]
    assert s.feed(b"c\nd\n") == [b"bc\n", b"d\n"]
    assert s.flush() == []


def test_splitter_cuts_long_lines_in_16k_partials() -> None:
    s = LineSplitter()
    out = s.feed(b"x" * (2 * MAX_LINE + 10) + b"\n")
    assert [len(m) for m in out] == [MAX_LINE, MAX_LINE, 11]
    assert not out[0].endswith(b"\n") and out[-1].endswith(b"\n")
    assert b"".join(out) == b"x" * (2 * MAX_LINE + 10) + b"\n"


def test_splitter_line_of_just_under_16k_stays_whole() -> None:
    s = LineSplitter()
    assert s.feed(b"y" * (MAX_LINE - 1) + b"\n") == [b"y" * (MAX_LINE - 1) + b"\n"]


def test_splitter_flush_returns_unterminated_tail() -> None:
    s = LineSplitter()
    assert s.feed(b"tail") == []
    assert s.flush() == [b"tail"]


def test_rotation_keeps_max_file_files(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    w = JsonFileWriter(log, max_size=200, max_file=3)
    for i in range(40):
        w.write("stdout", f"line {i:03d}\n".encode())
    w.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["c-json.log", "c-json.log.1", "c-json.log.2"]
    # newest lines in the live file, older ones in .1 then .2, and nothing out of order
    newest, older, oldest = (entries(tmp_path / n) for n in ("c-json.log", "c-json.log.1", "c-json.log.2"))
    seq = [e["log"] for e in oldest + older + newest]
    assert seq == sorted(seq) and seq[-1] == "line 039\n"
    for n in ("c-json.log.1", "c-json.log.2"):
        size = (tmp_path / n).stat().st_size
        assert 200 <= size < 200 + 100  # rotated once at or past max-size, by at most one entry


def test_max_file_one_truncates(tmp_path: Path) -> None:
    log = tmp_path / "l.log"
    w = JsonFileWriter(log, max_size=100, max_file=1)
    for i in range(20):
        w.write("stdout", f"{i}\n".encode())
    w.close()
    assert [p.name for p in tmp_path.iterdir()] == ["l.log"]
    assert entries(log)[-1]["log"] == "19\n"


def test_no_rotation_without_max_size(tmp_path: Path) -> None:
    w = JsonFileWriter(tmp_path / "l.log")
    for _ in range(100):
        w.write("stdout", b"z" * 100 + b"\n")
    w.close()
    assert len(entries(tmp_path / "l.log")) == 100


def test_pump_copies_a_fast_writer_without_loss(tmp_path: Path) -> None:
    """8 MB through a 64 KiB pipe: the writer blocks on the full pipe, nothing is dropped."""
    lines = [f"{i:07d} ".encode() + b"p" * 100 + b"\n" for i in range(80_000)]

    async def go() -> None:
        r, w = os.pipe2(os.O_CLOEXEC)
        writer = JsonFileWriter(tmp_path / "c.log")
        pump = LogPump(r, "stdout", writer)
        pid = os.fork()
        if pid == 0:  # a producer much faster than the pump
            try:
                os.close(r)
                data = b"".join(lines)
                view = memoryview(data)
                while view:
                    view = view[os.write(w, view):]
            finally:
                os._exit(0)
        os.close(w)
        await asyncio.wait_for(pump.done, 60)
        os.waitpid(pid, 0)
        writer.close()

    asyncio.run(go())
    got = entries(tmp_path / "c.log")
    assert [e["log"].encode() for e in got] == lines
    assert {e["stream"] for e in got} == {"stdout"}


def test_attrs_are_written_where_docker_writes_them(tmp_path: Path) -> None:
    frag = attrs_fragment({"tier": "web", "q": 'a"b'})
    line = format_entry(b"hi\n", "stdout", 1_000_000_000, frag)
    ref = {"log": "hi\n", "stream": "stdout", "attrs": {"q": 'a"b', "tier": "web"}, "time": "1970-01-01T00:00:01Z"}
    assert line == json.dumps(ref, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    assert attrs_fragment({}) == ""
    w = JsonFileWriter(tmp_path / "a.log", attrs=frag)
    w.write("stderr", b"x\n", 0)
    w.close()
    assert json.loads((tmp_path / "a.log").read_text())["attrs"] == {"q": 'a"b', "tier": "web"}


def _pump_bytes(tmp_path: Path, name: str, chunks: list[bytes], fast: bool, max_size: int = 0) -> bytes:
    """What a pump writes for these reads (one time stamp for all), by the block fast path or by
    feed + one entry per message."""
    w = JsonFileWriter(tmp_path / name, max_size=max_size, max_file=50)
    s = LineSplitter()
    for data in chunks:
        body = s.take_lines(data) if fast else None
        if body is not None:
            w.write_lines("stdout", body, 1_700_000_000_123_000_000)
        else:
            w.write_many("stdout", s.feed(data), 1_700_000_000_123_000_000)
    w.write_many("stdout", s.flush(), 1_700_000_000_123_000_000)
    w.close()
    files = sorted(tmp_path.glob(name + "*"), key=lambda p: -int(p.name.rpartition(".")[2] or 0)
                   if p.name != name else 0)
    return b"|".join(p.read_bytes() for p in files)


def test_block_fast_path_writes_what_per_line_entries_write(tmp_path: Path) -> None:
    """The block path (one escape call per read) is byte for byte the per-line path: lines split
    across reads, bad and multi-byte UTF-8 cut at read edges, control characters, quotes, U+2028,
    backslashes (the block path steps aside), lines at and over the 16 KiB cap, rotation inside."""
    import random

    rng = random.Random(15)
    alphabet = [b"a", b"n", b"\n", b"\n", b"\"", b"\\", b"\x00", b"\x1b[1m", b"\t", b"\r", "\u00e9".encode(),
                "\u2028".encode(), "\U0001f600".encode(), b"\xff", b"\xe2\x82"]
    for case in range(60):
        parts: list[bytes] = []
        for _ in range(rng.randrange(1, 400)):
            if rng.random() < 0.02:
                parts.append(b"L" * rng.choice([MAX_LINE - 2, MAX_LINE - 1, MAX_LINE, MAX_LINE + 5]))
            else:
                tok = rng.choice(alphabet)
                if case % 2 and tok == b"\\":
                    tok = b"b"  # half the cases without a backslash: the block path proper
                parts.append(tok)
        blob = b"".join(parts)
        cuts = sorted(rng.sample(range(len(blob) + 1), min(len(blob) + 1, rng.randrange(1, 8))))
        chunks = [blob[a:b] for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=True) if b > a]
        max_size = rng.choice([0, 0, 200, 5000])
        slow = _pump_bytes(tmp_path, f"s{case}.log", chunks, fast=False, max_size=max_size)
        fast = _pump_bytes(tmp_path, f"f{case}.log", chunks, fast=True, max_size=max_size)
        assert fast == slow, case
