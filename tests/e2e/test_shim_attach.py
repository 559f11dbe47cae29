"""A shim's terminal and attached clients, without ctrd: the pty master from the runtime (all
backends, runc's console socket included), its output in the json-file log and on every attached
client, stdin from a client (a pipe, or the pty), StdinOnce, resize, the exit frame, and a stalled
client that is cut off while the log and the other clients go on."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ctrd import errdefs
from ctrd.shim import attachwire as wire
from ctrd.shim.v1 import shim_pb2
from daemon.shims.client import ShimClient
from tests.e2e.test_shim_support import BACKENDS, Harness

pytestmark = [pytest.mark.root, pytest.mark.parametrize("backend", BACKENDS)]


EXIT = b"\0no such output: until the exit frame"


class Attached:
    """One client of a shim's io.sock."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.out = bytearray()
        self.err = bytearray()
        self.exit: int | None = None
        self._buf = bytearray()

    @classmethod
    async def open(cls, state_dir: Path) -> Attached:
        r, w = await asyncio.open_unix_connection(str(state_dir / wire.SOCKET_FILE))
        return cls(r, w)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_until(self, marker: bytes, timeout: float = 30) -> bytes:
        """Read frames until `marker` is in the output (or the exit frame came)."""
        async def go() -> bytes:
            seen = 0  # search only what is new (and the marker's width before it): output can be large
            while self.exit is None:
                if marker in self.out[max(0, seen - len(marker)):]:
                    break
                seen = len(self.out)
                chunk = await self.reader.read(65536)
                if not chunk:
                    break
                self._buf += chunk
                for kind, data in wire.take_frames(self._buf):
                    if kind == wire.STDOUT:
                        self.out += data
                    elif kind == wire.STDERR:
                        self.err += data
                    elif kind == wire.EXIT:
                        self.exit = wire.exit_status(data)
            return bytes(self.out)
        out = await asyncio.wait_for(go(), timeout)
        assert marker in out or (marker == EXIT and self.exit is not None), (marker, out, self.exit)
        return out

    async def wait_exit(self, timeout: float = 30) -> int:
        """Read until the exit frame (the last one); its status."""
        await self.read_until(EXIT, timeout)
        assert self.exit is not None
        return self.exit

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


async def terminal_container(h: Harness, args: list[str], *, terminal: bool = True, open_stdin: bool = True,
                             stdin_once: bool = False) -> tuple[str, Path, ShimClient]:
    cid = h.new_id()
    handle, c = await h.launch(cid)
    bundle = h.bundle(cid, args)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = terminal
    if terminal:
        config["process"]["consoleSize"] = {"height": 30, "width": 90}
    (bundle / "config.json").write_text(json.dumps(config))
    await c.create(shim_pb2.CreateRequest(id=cid, bundle=str(bundle), runtime=h.backend, log_path=str(h.log_path(cid)),
                                          terminal=terminal, open_stdin=open_stdin, stdin_once=stdin_once))
    return cid, handle.state_dir, c


def run(tmp: Path, backend: str, body: Callable[[Harness], Awaitable[None]]) -> None:
    async def go() -> None:
        async with Harness(tmp, backend) as h:
            await body(h)

    asyncio.run(asyncio.wait_for(go(), 120))


def test_a_terminal_container_talks_through_its_pty(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        cid, state_dir, c = await terminal_container(h, ["sh"])
        a = await Attached.open(state_dir)
        b = await Attached.open(state_dir)  # a second client sees the same output
        await c.start()
        await a.send(wire.frame(wire.STDIN, b"tty; stty size; echo $((6*7))\n"))
        out = await a.read_until(b"42\r\n")
        assert b"/dev/pts/0\r\n" in out and b"30 90\r\n" in out
        assert b"42\r\n" in await b.read_until(b"42\r\n")
        await c.resize_pty(40, 120)
        await b.send(wire.frame(wire.STDIN, b"stty size\n"))
        await a.read_until(b"40 120\r\n")
        await a.send(wire.resize(50, 160))  # resize by an attached client
        await a.send(wire.frame(wire.STDIN, b"stty size; exit 3\n"))
        await a.read_until(b"50 160\r\n")
        assert await a.wait_exit() == 3
        assert (await c.wait(timeout=10)).exit_status == 3
        assert await b.wait_exit() == 3
        logged = "".join(e["log"] for e in h.logs(cid))
        assert {e["stream"] for e in h.logs(cid)} == {"stdout"}  # a terminal has one stream
        assert "/dev/pts/0\r\n" in logged and "50 160\r\n" in logged
        late = await Attached.open(state_dir)  # after the exit: the exit frame only
        assert await late.wait_exit() == 3
        for x in (a, b, late):
            await x.close()
        with pytest.raises(errdefs.FailedPrecondition):
            await c.resize_pty(10, 10)

    run(short_tmp, backend, body)


def test_stdin_pipe_and_stdin_once(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        cid, state_dir, c = await terminal_container(h, ["sh", "-c", "cat; echo cat-ended; exit 5"], terminal=False,
                                                     stdin_once=True)
        a = await Attached.open(state_dir)
        await c.start()
        await a.send(wire.frame(wire.STDIN, b"hello\n"))
        await a.read_until(b"hello\n")
        await a.send(wire.frame(wire.STDIN_EOF))  # StdinOnce: the container's stdin closes
        await a.read_until(b"cat-ended\n")
        assert await a.wait_exit() == 5
        assert [(e["stream"], e["log"]) for e in h.logs(cid)] == [("stdout", "hello\n"), ("stdout", "cat-ended\n")]
        await a.close()
        with pytest.raises(errdefs.FailedPrecondition):
            await c.resize_pty(10, 10)  # no terminal

    run(short_tmp, backend, body)


def test_a_detached_client_leaves_the_container_and_another_attaches(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        _, state_dir, c = await terminal_container(h, ["sh"])
        await c.start()
        a = await Attached.open(state_dir)
        await a.send(wire.frame(wire.STDIN, b"echo first\n"))
        await a.read_until(b"first\r\n")
        await a.close()  # detach: no EOF, the shell stays
        b = await Attached.open(state_dir)
        await b.send(wire.frame(wire.STDIN, b"echo second\n"))
        await b.read_until(b"second\r\n")
        assert (await c.state()).status == shim_pb2.STATUS_RUNNING
        await b.send(wire.frame(wire.STDIN, b"exit 0\n"))
        assert await b.wait_exit() == 0
        await b.close()

    run(short_tmp, backend, body)


def test_a_stalled_client_is_cut_off_and_blocks_nothing(short_tmp: Path, backend: str) -> None:
    if backend != "":
        pytest.skip("the fan-out is the same for every backend")

    async def body(h: Harness) -> None:
        mib = 48  # more than any client may fall behind
        # 1 MiB at a time with short pauses: a live reader on a busy machine keeps up (it is never
        # CLIENT_BUFFER_MAX behind), the stalled one is cut when it is 4 MiB behind for 1 s
        script = (f"i=0; while [ $i -lt {mib} ]; do head -c 1048576 /dev/zero | tr '\\0' x; sleep 0.02; "
                  "i=$((i+1)); done; echo; echo ALL-WRITTEN; exit 0")
        cid, state_dir, c = await terminal_container(h, ["sh", "-c", script], terminal=False, open_stdin=False)
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(str(state_dir / wire.SOCKET_FILE))  # and never reads
        good = await Attached.open(state_dir)
        await c.start()
        t0 = time.monotonic()
        await good.read_until(b"ALL-WRITTEN\n", timeout=60)
        assert await good.wait_exit() == 0
        assert (await c.wait(timeout=30)).exit_status == 0
        elapsed = time.monotonic() - t0
        assert len(good.out) == (mib << 20) + len(b"\nALL-WRITTEN\n")
        logged = sum(len(e["log"]) for e in h.logs(cid))
        assert logged == (mib << 20) + len(b"\nALL-WRITTEN\n")  # the log is complete
        # the shim closed the stalled client: what it can still read ends with EOF, short of everything
        stalled.setblocking(True)
        stalled.settimeout(30)
        got = 0
        while chunk := stalled.recv(1 << 20):
            got += len(chunk)
        assert got < (mib << 20)
        stalled.close()
        await good.close()
        print(f"{mib} MiB through the shim with a stalled client attached: {elapsed:.2f}s")

    run(short_tmp, backend, body)


def test_bad_sizes_and_terminal_mismatch_are_refused(short_tmp: Path, backend: str) -> None:
    if backend != "":
        pytest.skip("shim-side checks, the same for every backend")

    async def body(h: Harness) -> None:
        _, _, c = await terminal_container(h, ["sh"])
        for rows, cols in ((0, 80), (24, 0), (100000, 80)):
            with pytest.raises(errdefs.InvalidArgument, match="size"):
                await c.resize_pty(rows, cols)
        cid = h.new_id()
        _, c2 = await h.launch(cid)
        bundle = h.bundle(cid, ["sh"])  # terminal: false in config.json
        with pytest.raises(errdefs.InvalidArgument, match="terminal"):
            await c2.create(shim_pb2.CreateRequest(id=cid, bundle=str(bundle), runtime=h.backend, terminal=True))

    run(short_tmp, backend, body)
