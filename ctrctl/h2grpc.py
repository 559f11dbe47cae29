"""A small synchronous gRPC client over HTTP/2 on a unix socket (HTTP/2 itself: ctrctl/h2wire.py).

Why not grpcio: `import grpc` costs ~50 ms of every ctrctl call on this machine, more than the rest
of a `ctrctl run` minus the container. The wire stays gRPC (HTTP/2, `application/grpc`,
length-prefixed messages, status in trailers), so the daemon is any gRPC server.

The shape is grpc's sync API, the part ctrctl uses: a `Channel` hands out multi-callables for the
four call kinds (`unary_unary`, `unary_stream`, `stream_unary`, `stream_stream`); a unary call
answers the response or raises `RpcError` (`code()`, `details()`, `trailing_metadata()`), and has
`.future()`; streaming calls are iterators of responses with `cancel()`; a request iterator of a
bidirectional call is consumed on its own thread while the caller reads responses.

One connection carries every call of a command (HTTP/2 streams). A reader thread owns the socket's
receiving side and hands each stream's messages to that stream's queue; senders share the
`h2wire.Connection` under one lock. Received data is acknowledged (WINDOW_UPDATE) as soon as it arrives
while a stream has less than `_BUFFERED` bytes of unread messages, else when the reader takes them:
a slow reader (`image save` into a pipe) holds the daemon back instead of filling memory.
"""

from __future__ import annotations

import _socket  # not `socket`: that module also loads selectors and array, ~1 ms of every call
import contextlib
import enum
import queue
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ctrctl import h2wire

_WINDOW = 8 << 20  # our receive window per stream and for the connection
_BUFFERED = 4 << 20  # unread message bytes per stream before we stop acknowledging
_RECV = 1 << 16
_HEADER = struct.Struct(">BI")  # gRPC message prefix: compressed flag, length


class StatusCode(enum.Enum):
    """gRPC status codes (their numbers on the wire; names as grpc.StatusCode)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


def _code(number: int) -> StatusCode:
    try:
        return StatusCode(number)
    except ValueError:
        return StatusCode.UNKNOWN


class RpcError(Exception):
    """A call that ended with a status other than OK."""

    def __init__(self, code: StatusCode, details: str, trailing: tuple[tuple[str, str | bytes], ...] = ()) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._trailing


class FutureTimeoutError(Exception):
    """`future.result(timeout)` ran out of time; the call goes on."""


# What a stream's queue carries: a message's bytes, or the end of the call.
class _End:
    __slots__ = ("error",)

    def __init__(self, error: RpcError | None) -> None:
        self.error = error


def _decode(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _percent_decoded(value: str) -> str:
    if "%" not in value:
        return value
    from urllib.parse import unquote

    return unquote(value)


def _status_of(headers: list[tuple[bytes, bytes]]) -> RpcError | bool | None:
    """The call's status from its trailers (or a trailers-only response): None for OK, the error
    otherwise; False when the headers carry no grpc-status."""
    status = message = None
    trailing: list[tuple[str, str | bytes]] = []
    for key, value in headers:
        if key == b"grpc-status":
            status = int(value)
        elif key == b"grpc-message":
            message = _percent_decoded(_decode(value))
        elif not key.startswith(b":") and key not in (b"content-type", b"grpc-encoding", b"grpc-accept-encoding"):
            name = _decode(key)
            if name.endswith("-bin"):
                import base64

                trailing.append((name, base64.b64decode(value + b"=" * (-len(value) % 4))))
            else:
                trailing.append((name, _decode(value)))
    if status is None:
        return False
    if status == 0:
        return None
    code = _code(status)
    return RpcError(code, message or code.name, tuple(trailing))


def _grpc_timeout(seconds: float) -> str:
    """The grpc-timeout header: at most 8 digits and a unit."""
    ms = max(1, int(seconds * 1000))
    if ms < 10**8:
        return f"{ms}m"
    return f"{min(10**8 - 1, int(seconds))}S"


class _Stream:
    """One call's receiving side: parsed messages and the final status, in a queue."""

    def __init__(self, sid: int) -> None:
        self.id = sid
        self.items: queue.SimpleQueue[bytes | _End] = queue.SimpleQueue()
        self.buf = bytearray()
        self.queued = 0  # bytes of messages in `items` the reader has not taken
        self.unacked = 0  # flow-controlled bytes received but not yet acknowledged
        self.headers_seen = False
        self.closed = False  # the end is queued (status, reset, cancel or connection loss)


class _Connection:
    """One HTTP/2 connection to the daemon and its reader thread."""

    def __init__(self, path: str, max_message: int) -> None:
        self.max_message = max_message
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise RpcError(StatusCode.UNAVAILABLE, f"failed to connect to unix:{path}: {exc.strerror or exc}") from None
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # window updates and stream ends, for senders
        self.streams: dict[int, _Stream] = {}
        self.dead: RpcError | None = None  # the socket is gone
        self.draining: RpcError | None = None  # GOAWAY received: no new calls on this connection
        self.h2 = h2wire.Connection(_WINDOW)
        self._flush()
        self.reader = threading.Thread(target=self._read, name="ctrctl-h2", daemon=True)
        self.reader.start()

    # -- sending (callers hold self.lock) --

    def _flush(self) -> None:
        data = self.h2.pending()
        if data:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                self._fail(RpcError(StatusCode.UNAVAILABLE, f"connection to the daemon lost: {exc.strerror or exc}"))

    def open(self, path: str, timeout: float | None) -> _Stream:
        with self.lock:
            if self.dead is not None or self.draining is not None:
                raise self.dead or self.draining  # type: ignore[misc]
            headers = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
                       ("te", "trailers"), ("content-type", "application/grpc"), ("user-agent", "ctrctl")]
            if timeout is not None:
                headers.append(("grpc-timeout", _grpc_timeout(timeout)))
            sid = self.h2.open_stream(headers)
            stream = self.streams[sid] = _Stream(sid)
            self._flush()
            return stream

    def send(self, stream: _Stream, payload: bytes, end: bool) -> bool:
        """Send one message (and half-close after it when `end`); False once the call has ended."""
        data = memoryview(_HEADER.pack(0, len(payload)) + payload)
        with self.lock:
            while data:
                if stream.closed:
                    return False
                room = self.h2.send_room(stream.id)
                if room is None:
                    return False  # the server has reset the call: its end is on the way
                if room <= 0:
                    self.changed.wait()
                    continue
                chunk, data = data[:room], data[room:]
                self.h2.send_data(stream.id, bytes(chunk), end=end and not data)
                self._flush()
            return True

    def half_close(self, stream: _Stream) -> None:
        with self.lock:
            if not stream.closed:
                self.h2.end_stream(stream.id)
                self._flush()

    def cancel(self, stream: _Stream, code: StatusCode, details: str) -> None:
        with self.lock:
            if stream.closed:
                return
            self.h2.reset_stream(stream.id, h2wire.CANCEL)
            self._flush()
            self._end(stream, RpcError(code, details))

    def taken(self, stream: _Stream, size: int) -> None:
        """The reader took a message: acknowledge what was held back."""
        with self.lock:
            stream.queued -= size
            if stream.unacked and stream.queued < _BUFFERED and not stream.closed and self.dead is None:
                self.h2.ack(stream.id, stream.unacked)
                self._flush()
                stream.unacked = 0

    def close(self) -> None:
        with self.lock:
            self._fail(RpcError(StatusCode.CANCELLED, "channel closed"))
        with contextlib.suppress(OSError):
            self.sock.shutdown(_socket.SHUT_RDWR)
        self.sock.close()

    # -- receiving (the reader thread) --

    def _read(self) -> None:
        why = "connection to the daemon closed"
        while True:
            try:
                data = self.sock.recv(_RECV)
            except OSError as exc:
                why = f"connection to the daemon lost: {exc.strerror or exc}"
                data = b""
            with self.lock:
                if self.dead is not None:
                    return
                if not data:
                    self._fail(RpcError(StatusCode.UNAVAILABLE, why))
                    return
                try:
                    events = self.h2.receive(data)
                except h2wire.ProtocolError as exc:
                    self._fail(RpcError(StatusCode.INTERNAL, f"HTTP/2 protocol error from the daemon: {exc}"))
                    return
                for event in events:
                    self._dispatch(event)
                self._flush()
                self.changed.notify_all()  # senders waiting for window (updates, new settings)

    def _dispatch(self, event: h2wire.Event) -> None:
        if isinstance(event, h2wire.GoAway):
            # calls the daemon has not taken fail; taken ones finish; new calls take a new connection
            err = RpcError(StatusCode.UNAVAILABLE, "the daemon closed the connection (GOAWAY)")
            self.draining = err
            for sid, open_stream in list(self.streams.items()):
                if sid > event.last_stream_id:
                    self._end(open_stream, err)
            return
        stream = self.streams.get(event.stream_id)
        if stream is None or stream.closed:
            if isinstance(event, h2wire.Data):
                self.h2.ack(event.stream_id, event.flow)
            return
        if isinstance(event, h2wire.Headers):
            trailers = stream.headers_seen
            stream.headers_seen = True
            self._headers(stream, event.headers, trailers=trailers)
        elif isinstance(event, h2wire.Data):
            self._data(stream, event.data, event.flow)
        elif isinstance(event, h2wire.Ended):
            self._end(stream, RpcError(StatusCode.INTERNAL, "the daemon ended the call without a status"))
        else:
            code = StatusCode.CANCELLED if event.error_code == h2wire.CANCEL else StatusCode.INTERNAL
            self._end(stream, RpcError(code, f"the daemon reset the call (HTTP/2 error {event.error_code})"))

    def _headers(self, stream: _Stream, headers: list[tuple[bytes, bytes]], trailers: bool) -> None:
        if not trailers:
            status = dict(headers).get(b":status", b"")
            if status != b"200":
                self._end(stream, RpcError(StatusCode.UNKNOWN if status != b"503" else StatusCode.UNAVAILABLE,
                                           f"the daemon answered HTTP status {_decode(status)}"))
                return
        end = _status_of(headers)
        if end is False:
            if trailers:
                self._end(stream, RpcError(StatusCode.INTERNAL, "the daemon's trailers carry no grpc-status"))
            return
        if stream.buf and end is None:
            end = RpcError(StatusCode.INTERNAL, "the call ended inside a message")
        self._end(stream, end if isinstance(end, RpcError) else None)

    def _data(self, stream: _Stream, data: bytes, flow: int) -> None:
        stream.buf += data
        buf = stream.buf
        while len(buf) >= 5:
            compressed, size = _HEADER.unpack_from(buf)
            if size > self.max_message:
                self.h2.reset_stream(stream.id, h2wire.CANCEL)
                self.h2.ack(stream.id, flow + stream.unacked)  # the connection's share
                self._end(stream, RpcError(StatusCode.RESOURCE_EXHAUSTED,
                                           f"received message larger than max ({size} vs. {self.max_message})"))
                return
            if len(buf) < 5 + size:
                break
            if compressed:
                self.h2.reset_stream(stream.id, h2wire.CANCEL)
                self.h2.ack(stream.id, flow + stream.unacked)  # the connection's share
                self._end(stream, RpcError(StatusCode.INTERNAL, "compressed message without an encoding"))
                return
            stream.items.put(bytes(buf[5:5 + size]))
            stream.queued += size
            del buf[:5 + size]
        if stream.queued < _BUFFERED:
            self.h2.ack(stream.id, flow + stream.unacked)
            stream.unacked = 0
        else:
            stream.unacked += flow

    def _end(self, stream: _Stream, error: RpcError | None) -> None:
        if stream.closed:
            return
        stream.closed = True
        self.streams.pop(stream.id, None)
        stream.items.put(_End(error))
        self.changed.notify_all()

    def _fail(self, err: RpcError) -> None:
        if self.dead is None:
            self.dead = err
        for stream in list(self.streams.values()):
            self._end(stream, err)


class Channel:
    """The daemon's socket; calls share one connection, made on the first call (or `connect()`)."""

    def __init__(self, path: str, max_message: int = 4 << 20) -> None:
        self.path = path
        self.max_message = max_message
        self._conn: _Connection | None = None
        self._lock = threading.Lock()

    def connect(self) -> _Connection:
        with self._lock:
            if self._conn is None or self._conn.dead is not None or self._conn.draining is not None:
                self._conn = _Connection(self.path, self.max_message)
            return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def unary_unary(self, path: str, request_serializer: Callable[[Any], bytes],
                    response_deserializer: Callable[[bytes], Any], **_: Any) -> UnaryUnary:
        return UnaryUnary(self, path, request_serializer, response_deserializer)

    def unary_stream(self, path: str, request_serializer: Callable[[Any], bytes],
                     response_deserializer: Callable[[bytes], Any], **_: Any) -> UnaryStream:
        return UnaryStream(self, path, request_serializer, response_deserializer)

    def stream_unary(self, path: str, request_serializer: Callable[[Any], bytes],
                     response_deserializer: Callable[[bytes], Any], **_: Any) -> StreamUnary:
        return StreamUnary(self, path, request_serializer, response_deserializer)

    def stream_stream(self, path: str, request_serializer: Callable[[Any], bytes],
                      response_deserializer: Callable[[bytes], Any], **_: Any) -> StreamStream:
        return StreamStream(self, path, request_serializer, response_deserializer)


class Call:
    """One call in flight: its responses as an iterator, `cancel()`, and its final status."""

    def __init__(self, channel: Channel, path: str, deserialize: Callable[[bytes], Any],
                 timeout: float | None) -> None:
        self._deserialize = deserialize
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._end: _End | None = None
        self._response: Any = None
        self._got = False
        self._conn = channel.connect()
        try:
            self._stream = self._conn.open(path, timeout)
        except RpcError:
            if self._conn.draining is None or self._conn.dead is not None:
                raise
            self._conn = channel.connect()  # the daemon sent GOAWAY just now: a new connection
            self._stream = self._conn.open(path, timeout)

    # -- the receiving side --

    def _next(self, wait: float | None) -> bytes | _End:
        """The next message or the end; FutureTimeoutError when `wait` runs out first."""
        if self._end is not None:
            return self._end
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if wait is None or left < wait:
                if left <= 0:
                    self._conn.cancel(self._stream, StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
                    wait = None
                else:
                    wait = left
        try:
            item = self._stream.items.get(timeout=wait)
        except queue.Empty:
            if self._deadline is not None and time.monotonic() >= self._deadline:
                return self._next(None)
            raise FutureTimeoutError() from None
        if isinstance(item, _End):
            self._end = item
        else:
            self._conn.taken(self._stream, len(item))
        return item

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        item = self._next(None)
        if isinstance(item, _End):
            if item.error is not None:
                raise item.error
            raise StopIteration
        return self._deserialize(item)

    def result(self, timeout: float | None = None) -> Any:
        """The one response of a unary-response call (raises RpcError, or FutureTimeoutError)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._end is None:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            item = self._next(wait)
            if isinstance(item, _End):
                break
            if self._got:
                self.cancel()
                raise RpcError(StatusCode.INTERNAL, "the daemon sent more than one response to a unary call")
            self._response, self._got = self._deserialize(item), True
        assert self._end is not None
        if self._end.error is not None:
            raise self._end.error
        if not self._got:
            raise RpcError(StatusCode.INTERNAL, "the daemon ended the call without a response")
        return self._response

    def cancel(self) -> bool:
        self._conn.cancel(self._stream, StatusCode.CANCELLED, "Locally cancelled by application!")
        return True

    def done(self) -> bool:
        return self._end is not None

    # -- the sending side --

    def _send_all(self, requests: Iterator[Any], serialize: Callable[[Any], bytes]) -> None:
        """Send every request, then half-close; a failing request iterator cancels the call."""
        try:
            for request in requests:
                if not self._conn.send(self._stream, serialize(request), end=False):
                    return
        except Exception as exc:
            self._conn.cancel(self._stream, StatusCode.CANCELLED, f"the request iterator failed: {exc}")
            return
        self._conn.half_close(self._stream)


class _MultiCallable:
    def __init__(self, channel: Channel, path: str, serialize: Callable[[Any], bytes],
                 deserialize: Callable[[bytes], Any]) -> None:
        self._channel, self._path = channel, path
        self._serialize, self._deserialize = serialize, deserialize

    def _unary_request(self, request: Any, timeout: float | None) -> Call:
        call = Call(self._channel, self._path, self._deserialize, timeout)
        call._conn.send(call._stream, self._serialize(request), end=True)
        return call


class UnaryUnary(_MultiCallable):
    def __call__(self, request: Any, timeout: float | None = None, **_: Any) -> Any:
        return self._unary_request(request, timeout).result()

    def future(self, request: Any, timeout: float | None = None, **_: Any) -> Call:
        return self._unary_request(request, timeout)


class UnaryStream(_MultiCallable):
    def __call__(self, request: Any, timeout: float | None = None, **_: Any) -> Call:
        return self._unary_request(request, timeout)


class StreamUnary(_MultiCallable):
    def __call__(self, request_iterator: Iterator[Any], timeout: float | None = None, **_: Any) -> Any:
        return self.future(request_iterator, timeout).result()

    def future(self, request_iterator: Iterator[Any], timeout: float | None = None, **_: Any) -> Call:
        call = Call(self._channel, self._path, self._deserialize, timeout)
        _start_sender(call, request_iterator, self._serialize)
        return call


class StreamStream(_MultiCallable):
    def __call__(self, request_iterator: Iterator[Any], timeout: float | None = None, **_: Any) -> Call:
        call = Call(self._channel, self._path, self._deserialize, timeout)
        _start_sender(call, request_iterator, self._serialize)
        return call


def _start_sender(call: Call, requests: Iterator[Any], serialize: Callable[[Any], bytes]) -> None:
    """Consume the request iterator on its own thread, as grpc does: it may block (stdin) while the
    caller reads responses, and the server may answer before the last request."""
    threading.Thread(target=call._send_all, args=(iter(requests), serialize), name="ctrctl-send",
                     daemon=True).start()
