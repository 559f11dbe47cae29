"""Fault suite, scenario 8 (bad input through the API: test_fault_input.py): garbage and idle
connections on the daemon's socket and on a shim's socket disturb neither the running containers
nor the daemon's control of them.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterator

import pytest

from ctrd.shim.v1 import shim_pb2
from tests.fault_helpers import (  # noqa: F401
    FD_SLACK,
    FaultDaemon,
    consistency,
    fault_ctrd,
    fd_count,
    pid_alive,
    settle,
)

pytestmark = pytest.mark.root

TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"
GARBAGE = b"\xff\xff\xff\x0f" + bytes(range(256)) * 4


@pytest.fixture
def d(fault_ctrd: Callable[..., FaultDaemon]) -> FaultDaemon:  # noqa: F811
    return fault_ctrd()


def _connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def _drain(s: socket.socket) -> bytes:
    """Read until the peer closes or goes quiet (a protocol error must not hang anything)."""
    out = b""
    s.settimeout(2)
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (TimeoutError, ConnectionError):
        pass
    return out


@pytest.fixture
def ticker(d: FaultDaemon) -> Iterator[tuple[str, int]]:
    cid = d.c.run("busybox", ["sh", "-c", TICKER], name="ticker", network_mode="none", stop_timeout=1)
    yield cid, d.c.inspect(cid)["State"]["Pid"]


def _ticks(d: FaultDaemon, cid: str) -> int:
    return sum(1 for e in d.c.logs(cid) if e.data.startswith(b"tick"))


def _undisturbed(d: FaultDaemon, cid: str, pid: int) -> None:
    info = d.c.inspect(cid)
    assert info["State"]["Status"] == "running" and info["State"]["Pid"] == pid and pid_alive(pid)
    n = _ticks(d, cid)
    assert settle(lambda: [] if _ticks(d, cid) > n else [f"no tick after tick {n}"]) == []  # still ticking
    d.c.pause(cid)
    d.c.resume(cid)
    d.c.stop(cid, timeout=0)
    assert d.c.inspect(cid)["State"]["ExitCode"] == 137
    assert settle(lambda: consistency(d)) == []


def test_garbage_on_the_daemon_socket(d: FaultDaemon, ticker: tuple[str, int]) -> None:
    cid, pid = ticker
    idle = [_connect(d.address) for _ in range(20)]  # held open, never speaking
    try:
        for blob in (
            GARBAGE * 64,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + GARBAGE,
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + struct.pack(">I", 0xFFFFFF)[1:] + b"\x00\x00" + b"\x00" * 4,
            b"PRI * HTTP/2.0\r\n",  # a truncated preface, then the client goes away
        ):
            s = _connect(d.address)
            try:
                s.sendall(blob)
                _drain(s)
            finally:
                s.close()
        t0 = time.monotonic()
        assert d.c.version()  # served while 20 idle connections are open
        assert time.monotonic() - t0 < 5
        assert d.c.inspect(cid)["State"]["Pid"] == pid
    finally:
        for s in idle:
            s.close()
    assert settle(lambda: [] if fd_count(d.pid) <= d.fd_baseline + FD_SLACK + 4 else [str(fd_count(d.pid))]) == []
    _undisturbed(d, cid, pid)


def _frame(env: shim_pb2.Envelope) -> bytes:
    body = env.SerializeToString()
    return struct.pack(">I", len(body)) + body


def test_garbage_on_a_shim_socket(d: FaultDaemon, ticker: tuple[str, int]) -> None:
    cid, pid = ticker
    sock = str(d.exec_root / "shims" / cid / "shim.sock")
    shims = d.shim_pids()
    idle = [_connect(sock) for _ in range(10)]
    try:
        for blob in (
            struct.pack(">I", 0xFFFFFFFF) + b"x" * 64,  # a frame far over the limit
            struct.pack(">I", 16) + GARBAGE[:16],  # a body that is no Envelope
            b"\x00\x00",  # a truncated header, then close
            struct.pack(">I", 1000) + b"short",  # a truncated body, then close
            _frame(shim_pb2.Envelope(id=1, method="NoSuchMethod")),
            _frame(shim_pb2.Envelope(id=2, method="Kill", payload=GARBAGE[:8])),
            _frame(shim_pb2.Envelope(id=3, method="Delete", payload=GARBAGE[:8])),
            GARBAGE * 16,
        ):
            s = _connect(sock)
            try:
                s.sendall(blob)
                s.shutdown(socket.SHUT_WR)
                _drain(s)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the shim closed the connection on the first bad byte: fine
            finally:
                s.close()
    finally:
        for s in idle:
            s.close()
    assert d.shim_pids() == shims
    _undisturbed(d, cid, pid)


def test_shim_answers_bad_envelopes_with_errors(d: FaultDaemon, ticker: tuple[str, int]) -> None:
    """A well-framed request for an unknown method or with a payload that does not parse gets an
    error envelope back on the same connection, which stays usable."""
    cid, pid = ticker
    s = _connect(str(d.exec_root / "shims" / cid / "shim.sock"))
    try:
        for i, env in enumerate((shim_pb2.Envelope(method="NoSuchMethod"),
                                 shim_pb2.Envelope(method="Kill", payload=GARBAGE[:8])), start=1):
            env.id = i
            s.sendall(_frame(env))
            header = _recv_exactly(s, 4)
            reply = shim_pb2.Envelope()
            reply.ParseFromString(_recv_exactly(s, struct.unpack(">I", header)[0]))
            assert reply.id == i and reply.HasField("error") and reply.error.message, reply
    finally:
        s.close()
    _undisturbed(d, cid, pid)


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"shim closed the connection after {len(out)} of {n} bytes")
        out += chunk
    return out
