"""ctrctl's gRPC client (ctrctl.h2grpc over ctrctl.h2wire, no grpcio, no h2) against a real grpc.aio server
in its own process: the four call kinds, statuses with their trailers, deadlines, cancel, a large
message, and a server killed mid-stream."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctrctl import h2grpc
from ctrctl.client import Client, native_error
from ctrctl.errors import Unreachable
from ctrctl.h2grpc import Channel, RpcError, StatusCode
from ctrd import errdefs

ROOT = Path(__file__).resolve().parents[2]


def _ident(b: bytes) -> bytes:
    return b


class Server:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.integration.h2grpc_server", str(path)],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until the server listens (or dies)
        assert line.strip() == "ready", f"test server did not start: {line!r}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def server(short_tmp: Path) -> Iterator[Server]:
    s = Server(short_tmp / "g.sock")
    try:
        yield s
    finally:
        s.kill()


@pytest.fixture
def channel(server: Server) -> Iterator[Channel]:
    ch = Channel(str(server.path), max_message=64 << 20)
    try:
        yield ch
    finally:
        ch.close()


def _method(ch: Channel, kind: str, name: str) -> h2grpc._MultiCallable:
    make = getattr(ch, kind)
    m: h2grpc._MultiCallable = make(f"/test.Echo/{name}", request_serializer=_ident, response_deserializer=_ident)
    return m


def test_unary_round_trip_and_future(channel: Channel) -> None:
    unary = _method(channel, "unary_unary", "Unary")
    assert unary(b"hello") == b"hello"
    assert unary(b"") == b""
    fut = unary.future(b"later")  # type: ignore[attr-defined]
    assert fut.result(timeout=10) == b"later"
    assert fut.result() == b"later"  # asked twice, same answer


def test_many_calls_share_one_connection_across_threads(channel: Channel) -> None:
    unary = _method(channel, "unary_unary", "Unary")
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda i=i: results.append(unary(str(i).encode()))) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == sorted(str(i).encode() for i in range(20))
    conn = channel.connect()
    assert conn.h2.last_stream_id == 39  # 20 streams (1, 3, ... 39) on one connection


@pytest.mark.parametrize(("code", "cls"), [("NOT_FOUND", errdefs.NotFound), ("ALREADY_EXISTS", errdefs.AlreadyExists),
                                           ("INVALID_ARGUMENT", errdefs.InvalidArgument),
                                           ("FAILED_PRECONDITION", errdefs.FailedPrecondition),
                                           ("INTERNAL", errdefs.Internal), ("PERMISSION_DENIED", errdefs.Internal)])
def test_status_details_and_reason_trailer(channel: Channel, code: str, cls: type[errdefs.CtrdError]) -> None:
    unary = _method(channel, "unary_unary", "Unary")
    with pytest.raises(RpcError) as info:
        unary(f"fail:{code}:exec-not-found:no such file: /bin/nope 100% é".encode())
    err = info.value
    assert err.code() is StatusCode[code]
    assert err.details() == "no such file: /bin/nope 100% é"  # percent-encoded on the wire
    assert ("ctrd-reason", "exec-not-found") in err.trailing_metadata()
    native = native_error(err)
    assert type(native) is cls and native.message == err.details() and native.reason == "exec-not-found"
    assert unary(b"still usable") == b"still usable"  # an error ends the call, not the connection


def test_error_without_reason(channel: Channel) -> None:
    with pytest.raises(RpcError) as info:
        _method(channel, "unary_unary", "Unary")(b"fail:UNAVAILABLE::down")
    assert info.value.code() is StatusCode.UNAVAILABLE
    assert native_error(info.value).reason == ""


def test_deadline(channel: Channel) -> None:
    unary = _method(channel, "unary_unary", "Unary")
    with pytest.raises(RpcError) as info:
        unary(b"sleep", timeout=0.3)
    assert info.value.code() is StatusCode.DEADLINE_EXCEEDED
    assert isinstance(native_error(info.value), errdefs.Unavailable)
    fut = unary.future(b"sleep")  # type: ignore[attr-defined]
    with pytest.raises(h2grpc.FutureTimeoutError):
        fut.result(timeout=0.05)
    fut.cancel()
    with pytest.raises(RpcError) as info:
        fut.result(timeout=5)
    assert info.value.code() is StatusCode.CANCELLED


def test_server_streaming_and_cancel(channel: Channel) -> None:
    count = _method(channel, "unary_stream", "Count")
    assert list(count(b"100")) == [str(i).encode() for i in range(100)]  # type: ignore[call-overload]
    assert list(count(b"0")) == []  # type: ignore[call-overload]
    call = count(b"forever")
    got: list[bytes] = []
    errors: list[RpcError] = []

    def read() -> None:
        try:
            for msg in call:  # type: ignore[attr-defined]
                got.append(msg)
                if len(got) == 3:
                    reached.set()
        except RpcError as exc:
            errors.append(exc)

    reached = threading.Event()
    t = threading.Thread(target=read)
    t.start()
    assert reached.wait(10)
    call.cancel()  # type: ignore[attr-defined]  # from another thread, as ctrctl's log pump is stopped
    t.join(10)
    assert not t.is_alive()
    assert errors and errors[0].code() is StatusCode.CANCELLED


def test_client_streaming(channel: Channel) -> None:
    total = _method(channel, "stream_unary", "Sum")
    chunks = [b"a" * 100_000 for _ in range(50)]  # 5 MB: more than the default HTTP/2 windows
    assert total(iter(chunks)) == b"5000000"
    assert total(iter([])) == b"0"


def test_bidi_requests_consumed_while_responses_read(channel: Channel) -> None:
    """Each request is produced only after the previous echo came back: a client that drained the
    request iterator before reading responses would hang here."""
    chat = _method(channel, "stream_stream", "Chat")
    echoed: queue.Queue[bytes] = queue.Queue()

    sent_all = threading.Event()

    def requests() -> Iterator[bytes]:
        for i in range(20):
            yield f"msg {i}".encode()
            assert echoed.get(timeout=10) == f"msg {i}".encode()
        sent_all.set()

    got = []
    for msg in chat(requests()):  # type: ignore[attr-defined]
        got.append(msg)
        echoed.put(msg)
    assert got == [f"msg {i}".encode() for i in range(20)]
    assert sent_all.is_set()  # the call ended because the request iterator did (half-close)


def test_bidi_error_status(channel: Channel) -> None:
    chat = _method(channel, "stream_stream", "Chat")
    call = chat(iter([b"one", b"fail", b"never"]))
    got = []
    with pytest.raises(RpcError) as info:
        for msg in call:  # type: ignore[attr-defined]
            got.append(msg)
    assert got == [b"one"]
    assert info.value.code() is StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "chat: bad message"
    assert ("ctrd-reason", "bad-chat") in info.value.trailing_metadata()


def test_large_messages_both_ways(channel: Channel) -> None:
    unary = _method(channel, "unary_unary", "Unary")
    assert len(unary(b"big:" + str(20 << 20).encode())) == 20 << 20
    payload = bytes(range(256)) * (80 << 10)  # 20 MiB out
    assert unary(payload) == payload


def test_message_over_the_limit_is_refused(server: Server) -> None:
    ch = Channel(str(server.path), max_message=1 << 20)
    try:
        with pytest.raises(RpcError) as info:
            _method(ch, "unary_unary", "Unary")(b"big:" + str(2 << 20).encode())
        assert info.value.code() is StatusCode.RESOURCE_EXHAUSTED
    finally:
        ch.close()


def test_server_killed_mid_stream(server: Server, channel: Channel) -> None:
    call = _method(channel, "unary_stream", "Once")(b"")
    it = iter(call)  # type: ignore[call-overload]
    assert next(it) == b"first"
    server.kill()
    with pytest.raises(RpcError) as info:
        next(it)
    assert info.value.code() is StatusCode.UNAVAILABLE
    # ctrctl's own path: the socket is dead, so the user sees the unreachable-daemon line
    client = Client("unix://" + str(server.path))
    with pytest.raises(Unreachable) as unreachable:
        client.native(info.value)
    assert unreachable.value.line == f"Cannot connect to ctrd at {server.path}: is the daemon running?"


def test_no_daemon(short_tmp: Path) -> None:
    ch = Channel(str(short_tmp / "absent.sock"))
    with pytest.raises(RpcError) as info:
        _method(ch, "unary_unary", "Unary")(b"x")
    assert info.value.code() is StatusCode.UNAVAILABLE
    client = Client(str(short_tmp / "absent.sock"))
    with pytest.raises(Unreachable):
        client.native(info.value)


def test_ctrctl_does_not_import_grpc() -> None:
    code = ("import sys; import ctrctl.client, ctrctl.attach, ctrctl.cmd_run, ctrctl.cmd_container, "
            "ctrctl.cmd_image, ctrctl.cmd_system, ctrctl.cmd_stats, ctrctl.cmd_registry; "
            "sys.exit('grpc' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_long_deadline_is_a_valid_header(channel: Channel) -> None:
    assert h2grpc._grpc_timeout(0.0001) == "1m"
    assert h2grpc._grpc_timeout(5) == "5000m"
    assert h2grpc._grpc_timeout(10**9) == "99999999S"
    assert _method(channel, "unary_unary", "Unary")(b"x", timeout=10**9) == b"x"
