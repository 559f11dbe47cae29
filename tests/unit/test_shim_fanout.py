"""shimd.attach.Fanout on socketpairs and pipes (no container): output to every client, a
stalled client cut off after its grace while a live one keeps everything, input back-pressure,
StdinOnce, resize frames, the exit frame for clients that come late."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest

from ctrd.shim import attachwire as wire
from shimd import attach


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 30))


async def frames_until(sock: socket.socket, kind: int) -> list[tuple[int, bytes]]:
    loop = asyncio.get_running_loop()
    buf = bytearray()
    got: list[tuple[int, bytes]] = []
    while not any(k == kind for k, _ in got):
        data = await loop.sock_recv(sock, 65536)
        if not data:
            break
        buf += data
        got += wire.take_frames(buf)
    return got


def client(hub: attach.Fanout) -> socket.socket:
    ours, theirs = socket.socketpair()
    hub.add(theirs.detach())
    ours.setblocking(False)
    return ours


def test_every_client_gets_the_output_and_the_exit_frame() -> None:
    async def body() -> None:
        hub = attach.Fanout()
        a, b = client(hub), client(hub)
        hub.publish("stdout", b"out")
        hub.publish("stderr", b"err")
        hub.finish(3)
        for s in (a, b):
            got = await frames_until(s, wire.EXIT)
            assert got == [(wire.STDOUT, b"out"), (wire.STDERR, b"err"), (wire.EXIT, struct.pack(">I", 3))]
            assert await asyncio.get_running_loop().sock_recv(s, 10) == b""  # closed after the exit frame
            s.close()
        late = client(hub)
        assert await frames_until(late, wire.EXIT) == [(wire.EXIT, struct.pack(">I", 3))]
        late.close()
        hub.close()

    run(body)


def test_a_stalled_client_is_cut_off_after_its_grace_and_a_reader_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attach, "CLIENT_BUFFER", 64 * 1024)
    monkeypatch.setattr(attach, "STALL_GRACE", 0.2)

    async def body() -> None:
        hub = attach.Fanout()
        stalled, live = client(hub), client(hub)
        chunk = b"x" * 32 * 1024
        received = 0
        sent = 0
        while len(hub.clients) == 2:  # until the stalled one is gone
            hub.publish("stdout", chunk)
            sent += len(chunk) + wire.HEADER.size
            await asyncio.sleep(0.01)  # the loop runs the live client's writer
            try:
                while data := live.recv(1 << 20):
                    received += len(data)
            except BlockingIOError:
                pass
        assert hub.clients and next(iter(hub.clients)).fd != -1
        hub.finish(0)
        rest = await frames_until(live, wire.EXIT)
        assert rest[-1][0] == wire.EXIT
        stalled.setblocking(True)
        cut = 0
        while data := stalled.recv(1 << 20):
            cut += len(data)
        assert cut < sent  # it was cut off short of everything
        live.close()
        stalled.close()
        hub.close()

    run(body)


def test_stdin_with_back_pressure_and_stdin_once() -> None:
    async def body() -> None:
        r, w = os.pipe()
        hub = attach.Fanout(stdin_once=True)
        hub.set_stdin(w)
        a, b = client(hub), client(hub)
        loop = asyncio.get_running_loop()
        big = b"y" * (attach.STDIN_BUFFER + 200 * 1024)  # more than the pipe and the buffer hold
        for off in range(0, len(big), wire.MAX_FRAME // 4):
            await loop.sock_sendall(a, wire.frame(wire.STDIN, big[off:off + wire.MAX_FRAME // 4]))
        await loop.sock_sendall(b, wire.frame(wire.STDIN_EOF))  # StdinOnce: the first end closes stdin
        os.set_blocking(r, False)
        got = bytearray()
        while True:
            await asyncio.sleep(0.005)
            try:
                data = os.read(r, 1 << 20)
            except BlockingIOError:
                continue
            if not data:
                break
            got += data
        assert bytes(got) == big  # all of it, then EOF
        os.close(r)
        a.close()
        b.close()
        hub.close()

    run(body)


def test_resize_frames_reach_the_terminal_and_bad_ones_are_ignored() -> None:
    async def body() -> None:
        sizes: list[tuple[int, int]] = []

        def resize(rows: int, cols: int) -> None:
            if rows == 0:
                raise ValueError("size: 0 rows")
            sizes.append((rows, cols))

        hub = attach.Fanout(resize=resize)
        s = client(hub)
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(s, wire.resize(0, 5) + wire.resize(24, 80) + wire.frame(wire.RESIZE, b"\x01"))
        while not sizes:
            await asyncio.sleep(0.005)
        assert sizes == [(24, 80)]
        assert len(hub.clients) == 1  # a bad frame costs the client nothing
        s.close()
        hub.close()

    run(body)
