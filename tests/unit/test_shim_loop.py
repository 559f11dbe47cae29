"""shimd.loop.ShimLoop: asyncio's tasks and futures on the shim's own epoll loop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from shimd.loop import ShimLoop, new_loop
from tests.shimloop import run


def test_callbacks_run_in_order_and_timers_by_due_time(loop: ShimLoop) -> None:
    seen: list[str] = []

    async def go() -> None:
        lp = asyncio.get_running_loop()
        assert lp is loop and lp.is_running()
        lp.call_later(0.05, seen.append, "late")
        lp.call_later(0.01, seen.append, "early")
        lp.call_later(0.02, seen.append, "cancelled").cancel()
        lp.call_soon(seen.append, "soon1")
        lp.call_soon(seen.append, "soon2")
        await asyncio.sleep(0.1)

    run(loop, go)
    assert seen == ["soon1", "soon2", "early", "late"]
    assert not loop.is_running()


def test_run_until_complete_returns_the_result_or_raises(loop: ShimLoop) -> None:
    async def ok() -> int:
        await asyncio.sleep(0)
        return 7

    async def bad() -> None:
        raise ValueError("boom")

    assert loop.run_until_complete(ok()) == 7
    with pytest.raises(ValueError, match="boom"):
        loop.run_until_complete(bad())


def test_asyncio_primitives_work_on_it(loop: ShimLoop) -> None:
    async def go() -> None:
        ev = asyncio.Event()
        lock = asyncio.Lock()
        asyncio.get_running_loop().call_later(0.02, ev.set)
        async with lock:
            await ev.wait()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10), 0.05)
        a, b = await asyncio.gather(asyncio.sleep(0.01, "a"), asyncio.sleep(0.02, "b"))
        assert (a, b) == ("a", "b")
        t = asyncio.create_task(asyncio.sleep(10))
        await asyncio.sleep(0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        inner = asyncio.create_task(asyncio.sleep(0.02, "shielded"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(inner), 0.001)
        assert await inner == "shielded"
        assert asyncio.current_task() in asyncio.all_tasks()

    run(loop, go)


def test_a_failing_callback_is_logged_and_the_loop_goes_on(loop: ShimLoop, caplog: pytest.LogCaptureFixture) -> None:
    def fail() -> None:
        raise RuntimeError("callback failed")

    async def go() -> str:
        asyncio.get_running_loop().call_soon(fail)
        await asyncio.sleep(0.01)
        return "still running"

    with caplog.at_level(logging.ERROR, logger="ctrd-shim"):
        assert run(loop, go) == "still running"
    assert "callback failed" in caplog.text


def test_readers_and_writers_on_a_socketpair(loop: ShimLoop) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    got: list[bytes] = []

    async def go() -> None:
        lp = asyncio.get_running_loop()
        done = lp.create_future()

        def readable() -> None:
            got.append(b.recv(100))
            done.set_result(None)

        lp.add_reader(b.fileno(), readable)
        writable = lp.create_future()
        lp.add_writer(a, lambda: writable.done() or writable.set_result(None))  # a socket object works too
        await writable
        assert lp.remove_writer(a) is True
        assert lp.remove_writer(a) is False
        a.send(b"ping")
        await done
        assert lp.remove_reader(b.fileno()) is True
        assert lp.remove_reader(b.fileno()) is False

    try:
        run(loop, go)
    finally:
        a.close()
        b.close()
    assert got == [b"ping"]


def test_a_reused_fd_number_can_be_watched_again(loop: ShimLoop) -> None:
    """An fd closed while watched leaves epoll on its own; its number may come back as a new file."""

    async def go() -> bytes:
        lp = asyncio.get_running_loop()
        r, w = os.pipe()
        lp.add_reader(r, lambda: None)
        os.close(r)
        os.close(w)
        r2, w2 = os.pipe()
        try:
            assert r2 == r  # the lowest free number comes back
            got = lp.create_future()
            lp.add_writer(r2, lambda: None)  # the stale registration is modified or replaced
            lp.remove_writer(r2)
            lp.add_reader(r2, lambda: got.done() or got.set_result(os.read(r2, 10)))
            os.write(w2, b"again")
            data: bytes = await got
            lp.remove_reader(r2)
            return data
        finally:
            os.close(r2)
            os.close(w2)

    assert run(loop, go) == b"again"


def test_signal_handlers_run_as_loop_callbacks(loop: ShimLoop) -> None:
    hits: list[int] = []

    async def go() -> None:
        lp = asyncio.get_running_loop()
        got = lp.create_future()
        lp.add_signal_handler(signal.SIGUSR1, lambda n: (hits.append(n), got.done() or got.set_result(None)), 5)
        os.kill(os.getpid(), signal.SIGUSR1)
        await got
        assert lp.remove_signal_handler(signal.SIGUSR1) is True
        assert lp.remove_signal_handler(signal.SIGUSR1) is False

    run(loop, go)
    assert hits == [5]
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert signal.set_wakeup_fd(-1) == -1  # the wake-up fd was released with the last handler


def test_sock_calls_move_a_large_payload(loop: ShimLoop, short_tmp: Path) -> None:
    path = str(short_tmp / "s.sock")
    payload = os.urandom(3 * 1024 * 1024)  # far beyond the socket buffers: partial sends

    async def go() -> bytes:
        lp = asyncio.get_running_loop()
        lsock = socket.socket(socket.AF_UNIX)
        lsock.bind(path)
        lsock.listen()
        lsock.setblocking(False)
        client = socket.socket(socket.AF_UNIX)
        client.setblocking(False)
        try:
            await lp.sock_connect(client, path)
            conn, _ = await lp.sock_accept(lsock)
            conn.setblocking(False)
            sender = asyncio.create_task(lp.sock_sendall(client, payload))
            chunks: list[bytes] = []
            received = 0
            while received < len(payload):
                chunk = await lp.sock_recv(conn, 65536)
                chunks.append(chunk)
                received += len(chunk)
            await sender
            conn.close()
            return b"".join(chunks)
        finally:
            client.close()
            lsock.close()

    assert run(loop, go) == payload


def test_sock_connect_to_nothing_raises(loop: ShimLoop, short_tmp: Path) -> None:
    async def go() -> None:
        s = socket.socket(socket.AF_UNIX)
        s.setblocking(False)
        try:
            with pytest.raises(OSError):
                await asyncio.get_running_loop().sock_connect(s, str(short_tmp / "none.sock"))
        finally:
            s.close()

    run(loop, go)


def test_cancelled_timers_do_not_pile_up(loop: ShimLoop) -> None:
    async def go() -> int:
        lp = asyncio.get_running_loop()
        for h in [lp.call_later(3600, print) for _ in range(300)]:
            h.cancel()
        await asyncio.sleep(0)
        return len(loop._timers)

    assert run(loop, go) < 300


def test_close_refuses_a_running_loop_and_is_idempotent() -> None:
    lp = new_loop()

    async def go() -> None:
        with pytest.raises(RuntimeError):
            lp.close()
        with pytest.raises(RuntimeError):
            lp.run_forever()

    lp.run_until_complete(go())
    lp.close()
    lp.close()
    assert lp.is_closed()


def test_stop_ends_run_forever(loop: ShimLoop) -> None:
    t0 = time.monotonic()
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert 0.04 < time.monotonic() - t0 < 5
    assert not loop.is_running()


