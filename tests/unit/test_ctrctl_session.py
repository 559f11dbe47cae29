"""ctrctl.session and ctrctl.tty with a fake Attach stub and a real pty (no daemon, no root)."""

from __future__ import annotations

import fcntl
import os
import queue
import struct
import termios
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ctrctl import tty
from ctrctl.session import StreamEnded, run_session
from ctrd.v1 import container_pb2 as pb


class FakeCall:
    """The sync stub's bidi call shape: takes a request iterator, is an iterator of responses."""

    def __init__(self, requests: Iterator[pb.AttachRequest], responses: list[Any]) -> None:
        self.got: list[pb.AttachRequest] = []
        self.cancelled = False
        self._responses = responses
        self._q: queue.SimpleQueue[pb.AttachRequest | None] = queue.SimpleQueue()

        def pump() -> None:
            for r in requests:
                self._q.put(r)
            self._q.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def next_request(self) -> pb.AttachRequest | None:
        r = self._q.get(timeout=10)
        if r is not None:
            self.got.append(r)
        return r

    def __iter__(self) -> Iterator[pb.AttachResponse]:
        for item in self._responses:
            if callable(item):
                item = item(self)
            if isinstance(item, BaseException):
                raise item
            if item is not None:
                yield item

    def cancel(self) -> None:
        self.cancelled = True


def out(data: bytes, stream: str = "stdout") -> pb.AttachResponse:
    return pb.AttachResponse(output=pb.AttachOutput(stream=stream, data=data))


def test_pipe_session_forwards_stdin_then_eof_and_returns_the_exit_code() -> None:
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.write(in_w, b"hello")
    os.close(in_w)
    calls: list[FakeCall] = []
    started: list[bool] = []

    def wait_eof(call: FakeCall) -> None:
        while (r := call.next_request()) is not None and not r.stdin_eof:
            pass

    def stub(requests: Iterator[pb.AttachRequest]) -> FakeCall:
        c = FakeCall(requests, [pb.AttachResponse(started=pb.AttachStarted(tty=False)), wait_eof,
                                out(b"hello"), out(b"warn", "stderr"), pb.AttachResponse(exit=pb.AttachExit(exit_code=3))])
        calls.append(c)
        return c

    opened = pb.AttachOpen(id="c", stdin=True, stdout=True, stderr=True)
    r = run_session(stub, opened, on_started=lambda: started.append(True), stdin_fd=in_r, stdout_fd=out_w,
                    stderr_fd=err_w)
    assert (r.exit_code, r.detached) == (3, False)
    assert started == [True]
    assert os.read(out_r, 100) == b"hello" and os.read(err_r, 100) == b"warn"
    got = calls[0].got
    assert got[0].open.id == "c" and got[1].stdin == b"hello" and got[2].stdin_eof
    assert calls[0].cancelled
    for fd in (in_r, out_r, out_w, err_r, err_w):
        os.close(fd)


def test_tty_session_goes_raw_sends_the_size_and_restores_on_error() -> None:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    seen: list[pb.AttachRequest] = []

    def raw_then_fail(call: FakeCall) -> None:
        assert not tty_canonical(slave)  # raw while attached
        r = call.next_request()
        assert r is not None and r.open.id == "c"
        r = call.next_request()
        assert r is not None
        seen.append(r)
        return None

    def stub(requests: Iterator[pb.AttachRequest]) -> FakeCall:
        return FakeCall(requests, [pb.AttachResponse(started=pb.AttachStarted(tty=True)), raw_then_fail,
                                   RuntimeError("daemon gone")])

    opened = pb.AttachOpen(id="c", stdin=True, stdout=True)
    assert tty_canonical(slave)
    with pytest.raises(RuntimeError, match="daemon gone"):
        run_session(stub, opened, stdin_fd=slave, stdout_fd=slave)
    assert tty_canonical(slave)  # restored on the error path
    assert seen[0].resize.rows == 33 and seen[0].resize.cols == 111
    os.close(master)
    os.close(slave)


def test_stream_that_ends_without_an_exit() -> None:
    def stub(requests: Iterator[pb.AttachRequest]) -> FakeCall:
        return FakeCall(requests, [pb.AttachResponse(started=pb.AttachStarted())])

    with pytest.raises(StreamEnded):
        run_session(stub, pb.AttachOpen(id="c", stdout=True), stdin_fd=-1)


def test_detached_result() -> None:
    def stub(requests: Iterator[pb.AttachRequest]) -> FakeCall:
        return FakeCall(requests, [pb.AttachResponse(started=pb.AttachStarted()), pb.AttachResponse(detached=True)])

    r = run_session(stub, pb.AttachOpen(id="c", stdout=True), stdin_fd=-1)
    assert (r.exit_code, r.detached) == (None, True)


def tty_canonical(fd: int) -> bool:
    return bool(termios.tcgetattr(fd)[3] & termios.ICANON)


def test_size_of_a_pty_and_of_a_pipe() -> None:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    assert tty.size(slave) == (24, 80)
    r, w = os.pipe()
    assert tty.size(r) is None
    for fd in (master, slave, r, w):
        os.close(fd)
