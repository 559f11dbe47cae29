"""daemon.containers.attach: docker's detach-keys syntax, the escape filter, and the relay between
an Attach stream and a shim's attach socket (a socketpair playing the shim)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from ctrd import errdefs
from ctrd.shim import attachwire as wire
from ctrd.v1 import container_pb2 as pb
from daemon.containers import attach


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 30))


def test_detach_keys_docker_syntax() -> None:
    assert attach.parse_detach_keys("") == b"\x10\x11"
    assert attach.parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert attach.parse_detach_keys("CTRL-A,x,ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_") == \
        b"\x01x\x00\x1b\x1c\x1d\x1e\x1f"


@pytest.mark.parametrize("spec", ["ctrl-", "ctrl-1", "ctrlp", "ab", "ctrl-p,,", "é", "ctrl-pq"])
def test_detach_keys_bad_input_names_the_field(spec: str) -> None:
    with pytest.raises(errdefs.InvalidArgument, match=r"^detach-keys: "):
        attach.parse_detach_keys(spec)


def test_escape_filter_holds_a_prefix_until_decided() -> None:
    f = attach.EscapeFilter(b"\x10\x11")
    assert f.feed(b"ab\x10") == (b"ab", False)  # ctrl-p held back
    assert f.feed(b"c") == (b"\x10c", False)  # not the sequence: released, in order
    assert f.feed(b"\x10\x10") == (b"\x10", False)  # the second ctrl-p may still start it
    assert f.feed(b"\x11rest") == (b"", True)


def test_escape_filter_without_keys_passes_everything() -> None:
    assert attach.EscapeFilter(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


class FakeShim:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    async def send(self, kind: int, data: bytes = b"") -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, wire.frame(kind, data))

    async def frames(self, until: int) -> list[tuple[int, bytes]]:
        got: list[tuple[int, bytes]] = []
        while not any(k == until for k, _ in got):
            data = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
            if not data:
                break
            self.buf += data
            got += wire.take_frames(self.buf)
        return got


async def pair() -> tuple[attach.ShimIO, FakeShim]:
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    ours.setblocking(False)
    return await attach.ShimIO.over(ours), FakeShim(theirs)


class Requests:
    def __init__(self) -> None:
        self.q: asyncio.Queue[pb.AttachRequest | None] = asyncio.Queue()

    def __aiter__(self) -> AsyncIterator[pb.AttachRequest]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[pb.AttachRequest]:
        while (r := await self.q.get()) is not None:
            yield r


def opts(**kw: object) -> pb.AttachOpen:
    base: dict[str, object] = {"id": "c", "stdin": True, "stdout": True, "stderr": True}
    base.update(kw)
    return pb.AttachOpen(**base)  # type: ignore[arg-type]


def test_relay_output_input_resize_and_exit() -> None:
    async def body() -> None:
        io, shim = await pair()
        reqs = Requests()
        gen = attach.relay(io, opts(), False, reqs)
        assert (await anext(gen)).started.tty is False
        await shim.send(wire.STDOUT, b"out1")
        await shim.send(wire.STDOUT, b"out2")
        await shim.send(wire.STDERR, b"err")
        r = await anext(gen)
        assert r.output.stream == "stdout" and r.output.data.startswith(b"out1")
        data = r.output.data
        while len(data) < 8:
            data += (await anext(gen)).output.data
        assert data == b"out1out2"
        r = await anext(gen)
        assert (r.output.stream, r.output.data) == ("stderr", b"err")
        await reqs.q.put(pb.AttachRequest(stdin=b"hello"))
        await reqs.q.put(pb.AttachRequest(resize=pb.ResizeRequest(rows=24, cols=80)))
        await reqs.q.put(pb.AttachRequest(stdin_eof=True))
        got = await shim.frames(until=wire.STDIN_EOF)
        assert got == [(wire.STDIN, b"hello"), (wire.RESIZE, struct.pack(">HH", 24, 80)), (wire.STDIN_EOF, b"")]
        await shim.send(wire.EXIT, struct.pack(">I", 3))
        assert (await anext(gen)).exit.exit_code == 3
        with pytest.raises(StopAsyncIteration):
            await anext(gen)
        shim.sock.close()

    run(body)


def test_relay_detach_keys_only_with_a_tty() -> None:
    async def body() -> None:
        io, shim = await pair()
        reqs = Requests()
        gen = attach.relay(io, opts(detach_keys="ctrl-a"), True, reqs)
        assert (await anext(gen)).started.tty is True
        await reqs.q.put(pb.AttachRequest(stdin=b"ls\x01"))
        assert (await anext(gen)).detached is True
        assert await shim.frames(until=wire.STDIN) == [(wire.STDIN, b"ls")]
        await gen.aclose()
        # detaching leaves the process alone: no STDIN_EOF, just the connection closed
        assert await shim.frames(until=wire.STDIN_EOF) == []
        shim.sock.close()

        io, shim = await pair()
        reqs = Requests()
        gen = attach.relay(io, opts(detach_keys="ctrl-a"), False, reqs)
        await anext(gen)
        await reqs.q.put(pb.AttachRequest(stdin=b"ls\x01"))
        assert await shim.frames(until=wire.STDIN) == [(wire.STDIN, b"ls\x01")]
        await gen.aclose()
        shim.sock.close()

    run(body)


def test_relay_bad_resize_and_shim_gone() -> None:
    async def body() -> None:
        io, shim = await pair()
        reqs = Requests()
        gen = attach.relay(io, opts(), True, reqs)
        await anext(gen)
        await reqs.q.put(pb.AttachRequest(resize=pb.ResizeRequest(rows=0, cols=80)))
        with pytest.raises(errdefs.InvalidArgument, match="size"):
            await anext(gen)
        shim.sock.close()

        io, shim = await pair()
        gen = attach.relay(io, opts(), True, Requests())
        await anext(gen)
        shim.sock.close()
        with pytest.raises(errdefs.Unavailable):
            await anext(gen)

    run(body)


def test_relay_end_of_requests_is_stdin_eof_and_output_filtered() -> None:
    async def body() -> None:
        io, shim = await pair()
        reqs = Requests()
        gen = attach.relay(io, opts(stderr=False), False, reqs)
        await anext(gen)
        await reqs.q.put(None)
        assert await shim.frames(until=wire.STDIN_EOF) == [(wire.STDIN_EOF, b"")]
        await shim.send(wire.STDERR, b"hidden")
        await shim.send(wire.STDOUT, b"shown")
        assert (await anext(gen)).output.data == b"shown"
        await shim.send(wire.EXIT, struct.pack(">I", 0))
        assert (await anext(gen)).exit.exit_code == 0
        await gen.aclose()
        shim.sock.close()

    run(body)


def test_relay_keeps_the_exit_when_stdin_fails_after_the_shim_closed() -> None:
    """The process exited while stdin was still coming: the shim sent EXIT and closed. The stdin
    write that fails (EPIPE) must not take the received EXIT with it (it did once: `exec -i sh`
    from a script exited 126 "Broken pipe" instead of the script's status)."""
    async def body() -> None:
        io, shim = await pair()
        await shim.send(wire.EXIT, struct.pack(">I", 9))
        shim.sock.close()
        with pytest.raises(BrokenPipeError):
            await io.send(wire.STDIN, b"echo more\n")  # before the relay has read anything
        reqs = Requests()
        gen = attach.relay(io, opts(), False, reqs)
        assert (await anext(gen)).started.tty is False
        await reqs.q.put(pb.AttachRequest(stdin=b"still more"))
        await reqs.q.put(pb.AttachRequest(stdin_eof=True))
        assert (await anext(gen)).exit.exit_code == 9
        await gen.aclose()

    run(body)
