"""The client side of HTTP/2 (RFC 9113) and HPACK (RFC 7541) that ctrctl's gRPC calls need.

Why not the `h2` library, which ctrctl used before: importing it (with hyperframe, hpack, logging
and dataclasses) took ~20 ms of every ctrctl call on this machine, about a fifth of `ctrctl ps`
(measured 2026-12-06 with -X importtime: h2.connection 20.6 ms inside a ~70 ms `ctrctl version`).
This module imports nothing beyond `struct`. Its scope is one client connection to a gRPC server:
  - frames: DATA, HEADERS and CONTINUATION, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE;
    PRIORITY and unknown types are skipped, PUSH_PROMISE is an error (push is disabled);
  - flow control both ways: sends never exceed the peer's stream and connection windows; received
    data is acknowledged by the caller (`ack`), which is how a slow reader holds the server back;
  - HPACK: requests use literals that are never indexed (no dynamic table for the server to keep);
    responses are decoded in full (static and dynamic tables, size updates). A Huffman-coded
    string is decoded by the `hpack` library, imported then and only then (gRPC servers rarely
    Huffman-code; the library's tested table is better than a second copy).
The caller owns the socket: `receive(bytes)` returns events, `pending()` the bytes to write.
"""

from __future__ import annotations

import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_FRAME = struct.Struct(">HBBBI")  # length (24 bits as 16 + 8), type, flags, stream id (31 bits)

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 1, 2, 4, 5
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, CANCEL, COMPRESSION_ERROR = 0, 1, 3, 6, 8, 9

_DEFAULT_WINDOW = 65535
_MAX_WINDOW = (1 << 31) - 1
_MAX_FRAME_IN = 16384  # we never raise SETTINGS_MAX_FRAME_SIZE
_MAX_HEADER_LIST = 1 << 20  # a response's header block, decoded (the server's errors are short)


class ProtocolError(Exception):
    """The peer broke HTTP/2 or HPACK; the connection is unusable."""


# -- events that `receive` returns --

class Headers:
    __slots__ = ("headers", "stream_id")

    def __init__(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.stream_id, self.headers = stream_id, headers


class Data:
    __slots__ = ("data", "flow", "stream_id")

    def __init__(self, stream_id: int, data: bytes, flow: int) -> None:
        self.stream_id, self.data, self.flow = stream_id, data, flow  # flow: the frame's length, padding included


class Ended:
    """The server closed its side of the stream (END_STREAM)."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class Reset:
    __slots__ = ("error_code", "stream_id")

    def __init__(self, stream_id: int, error_code: int) -> None:
        self.stream_id, self.error_code = stream_id, error_code


class GoAway:
    __slots__ = ("error_code", "last_stream_id")

    def __init__(self, last_stream_id: int, error_code: int) -> None:
        self.last_stream_id, self.error_code = last_stream_id, error_code


Event = Headers | Data | Ended | Reset | GoAway


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _FRAME.pack(n >> 8, n & 0xFF, kind, flags, stream_id) + payload


class Connection:
    """One client connection's protocol state (no I/O, no locking: the caller serialises)."""

    def __init__(self, window: int) -> None:
        self._out = bytearray(PREFACE)
        settings = struct.pack(">HIHI", SETTINGS_ENABLE_PUSH, 0, SETTINGS_INITIAL_WINDOW_SIZE, window)
        self._out += frame(SETTINGS, 0, 0, settings)
        if window > _DEFAULT_WINDOW:
            self._out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", window - _DEFAULT_WINDOW))
        self._next_id = 1
        self._send_conn = _DEFAULT_WINDOW  # what we may still send on the connection
        self._send_initial = _DEFAULT_WINDOW  # the peer's SETTINGS_INITIAL_WINDOW_SIZE
        self._send_windows: dict[int, int] = {}  # streams we may still send on: their windows
        self.max_frame = 16384  # the peer's SETTINGS_MAX_FRAME_SIZE
        self._open: set[int] = set()  # streams the server has not ended or reset
        self._buf = bytearray()
        self._block: bytearray | None = None  # a header block waiting for its CONTINUATION frames
        self._block_sid = 0
        self._block_end = False
        self._hpack = _Decoder()

    def pending(self) -> bytes:
        """The bytes to write to the socket now."""
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- sending --

    def open_stream(self, headers: list[tuple[str, str]]) -> int:
        sid = self._next_id
        self._next_id += 2
        block = _encode(headers)
        first, rest = block[:self.max_frame], block[self.max_frame:]
        self._out += frame(HEADERS, 0 if rest else END_HEADERS, sid, first)
        while rest:
            chunk, rest = rest[:self.max_frame], rest[self.max_frame:]
            self._out += frame(CONTINUATION, 0 if rest else END_HEADERS, sid, chunk)
        self._send_windows[sid] = self._send_initial
        self._open.add(sid)
        return sid

    @property
    def last_stream_id(self) -> int:
        """The newest stream we opened (0 before the first)."""
        return self._next_id - 2 if self._next_id > 1 else 0

    def send_room(self, sid: int) -> int | None:
        """How many bytes of DATA may go out on the stream now; None once we cannot send on it."""
        window = self._send_windows.get(sid)
        if window is None:
            return None
        return min(window, self._send_conn, self.max_frame)

    def send_data(self, sid: int, data: bytes, end: bool) -> None:
        """`data` must fit in `send_room(sid)`."""
        n = len(data)
        self._send_windows[sid] -= n
        self._send_conn -= n
        self._out += frame(DATA, END_STREAM if end else 0, sid, data)
        if end:
            self._local_closed(sid)

    def end_stream(self, sid: int) -> None:
        if sid in self._send_windows:
            self._out += frame(DATA, END_STREAM, sid)
            self._local_closed(sid)

    def reset_stream(self, sid: int, code: int = CANCEL) -> None:
        if sid in self._send_windows or sid in self._open:
            self._out += frame(RST_STREAM, 0, sid, struct.pack(">I", code))
        self._send_windows.pop(sid, None)
        self._open.discard(sid)

    def ack(self, sid: int, n: int) -> None:
        """`n` received bytes were consumed: the server may send that much more (on the
        connection always; on the stream while it is open)."""
        if n <= 0:
            return
        inc = struct.pack(">I", n)
        self._out += frame(WINDOW_UPDATE, 0, 0, inc)
        if sid in self._open:
            self._out += frame(WINDOW_UPDATE, 0, sid, inc)

    def _local_closed(self, sid: int) -> None:
        self._send_windows.pop(sid, None)

    # -- receiving --

    def receive(self, data: bytes) -> list[Event]:
        """Parse what arrived; returns the events. Raises ProtocolError."""
        self._buf += data
        events: list[Event] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 9:
            hi, lo, kind, flags, sid = _FRAME.unpack_from(buf, pos)
            length = (hi << 8) | lo
            if length > _MAX_FRAME_IN:
                raise ProtocolError(f"frame of {length} bytes (type {kind}) over the 16384-byte limit")
            if len(buf) - pos < 9 + length:
                break
            payload = bytes(buf[pos + 9:pos + 9 + length])
            pos += 9 + length
            self._frame(kind, flags, sid & 0x7FFFFFFF, payload, events)
        del buf[:pos]
        return events

    def _frame(self, kind: int, flags: int, sid: int, payload: bytes, events: list[Event]) -> None:
        if self._block is not None and kind != CONTINUATION:
            raise ProtocolError(f"frame type {kind} inside a header block")
        if kind == DATA:
            flow = len(payload)
            if flags & PADDED:
                payload = _unpad(payload)
            if sid in self._open:
                events.append(Data(sid, payload, flow))
                if flags & END_STREAM:
                    self._remote_closed(sid, events)
            else:
                self.ack(sid, flow)  # a stream we gave up: the connection's window still counts it
        elif kind == HEADERS:
            if flags & PADDED:
                payload = _unpad(payload)
            if flags & PRIORITY_FLAG:
                payload = payload[5:]
            self._block, self._block_sid, self._block_end = bytearray(payload), sid, bool(flags & END_STREAM)
            if flags & END_HEADERS:
                self._headers_done(events)
        elif kind == CONTINUATION:
            if self._block is None or sid != self._block_sid:
                raise ProtocolError("CONTINUATION without its HEADERS")
            self._block += payload
            if len(self._block) > _MAX_HEADER_LIST:
                raise ProtocolError("header block too large")
            if flags & END_HEADERS:
                self._headers_done(events)
        elif kind == RST_STREAM:
            if len(payload) != 4:
                raise ProtocolError("RST_STREAM of the wrong size")
            if sid in self._open or sid in self._send_windows:
                self._open.discard(sid)
                self._send_windows.pop(sid, None)
                events.append(Reset(sid, struct.unpack(">I", payload)[0]))
        elif kind == SETTINGS:
            if not flags & ACK:
                self._settings(payload)
                self._out += frame(SETTINGS, ACK, 0)
        elif kind == PING:
            if not flags & ACK:
                self._out += frame(PING, ACK, 0, payload)
        elif kind == GOAWAY:
            if len(payload) < 8:
                raise ProtocolError("GOAWAY too short")
            last, code = struct.unpack_from(">II", payload)
            events.append(GoAway(last & 0x7FFFFFFF, code))
        elif kind == WINDOW_UPDATE:
            if len(payload) != 4:
                raise ProtocolError("WINDOW_UPDATE of the wrong size")
            inc = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
            if sid == 0:
                self._send_conn += inc
                if self._send_conn > _MAX_WINDOW:
                    raise ProtocolError("connection flow-control window over 2^31-1")
            elif sid in self._send_windows:
                self._send_windows[sid] += inc
        elif kind == PUSH_PROMISE:
            raise ProtocolError("PUSH_PROMISE although push is disabled")
        # PRIORITY and unknown frame types: nothing to do

    def _headers_done(self, events: list[Event]) -> None:
        assert self._block is not None
        block, sid, end = bytes(self._block), self._block_sid, self._block_end
        self._block = None
        headers = self._hpack.decode(block)  # always: the dynamic table must follow every block
        if sid in self._open:
            events.append(Headers(sid, headers))
            if end:
                self._remote_closed(sid, events)

    def _remote_closed(self, sid: int, events: list[Event]) -> None:
        self._open.discard(sid)
        events.append(Ended(sid))

    def _settings(self, payload: bytes) -> None:
        if len(payload) % 6:
            raise ProtocolError("SETTINGS of the wrong size")
        for off in range(0, len(payload), 6):
            key, value = struct.unpack_from(">HI", payload, off)
            if key == SETTINGS_INITIAL_WINDOW_SIZE:
                if value > _MAX_WINDOW:
                    raise ProtocolError("SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1")
                delta = value - self._send_initial
                self._send_initial = value
                for s in self._send_windows:
                    self._send_windows[s] += delta
            elif key == SETTINGS_MAX_FRAME_SIZE:
                if not 16384 <= value <= (1 << 24) - 1:
                    raise ProtocolError(f"SETTINGS_MAX_FRAME_SIZE {value} out of range")
                self.max_frame = value
            # HEADER_TABLE_SIZE bounds the server's decoder: our literals never index, so it is moot


def _unpad(payload: bytes) -> bytes:
    if not payload or payload[0] >= len(payload):
        raise ProtocolError("padding longer than the frame")
    return payload[1:len(payload) - payload[0]]


# -- HPACK --

# RFC 7541 Appendix A
STATIC_TABLE: tuple[tuple[bytes, bytes], ...] = tuple(
    (n.encode(), v.encode()) for n, v in (
        (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
        (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
        (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
        ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""),
        ("cache-control", ""), ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""),
        ("content-length", ""), ("content-location", ""), ("content-range", ""), ("content-type", ""),
        ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
        ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
        ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""),
        ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""),
        ("retry-after", ""), ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""),
        ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    )
)
_INDEXED = {(b":method", b"POST"): 0x83, (b":scheme", b"http"): 0x86}  # whole fields of the static table


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode(headers: list[tuple[str, str]]) -> bytes:
    """Every field a literal that is never indexed (new name, raw strings), but the two of the
    static table every gRPC request has."""
    out = bytearray()
    for name, value in headers:
        n, v = name.encode(), value.encode()
        if (n, v) in _INDEXED:
            out.append(_INDEXED[(n, v)])
            continue
        out.append(0x10)
        out += _integer(len(n), 7, 0) + n
        out += _integer(len(v), 7, 0) + v
    return bytes(out)


class _Decoder:
    """An HPACK decoder with the dynamic table (4096 bytes: we never announce another size)."""

    def __init__(self, max_size: int = 4096) -> None:
        self.limit = max_size  # what the server may raise the table to
        self.max_size = max_size
        self.size = 0
        self.dynamic: list[tuple[bytes, bytes]] = []  # newest first

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        pos, end = 0, len(block)
        while pos < end:
            b = block[pos]
            if b & 0x80:  # indexed field
                index, pos = self._int(block, pos, 7)
                headers.append(self._entry(index))
            elif b & 0x40:  # literal with incremental indexing
                field, pos = self._literal(block, pos, 6)
                headers.append(field)
                self._add(field)
            elif b & 0x20:  # dynamic table size update
                size, pos = self._int(block, pos, 5)
                if size > self.limit:
                    raise ProtocolError(f"HPACK table size {size} over the {self.limit} allowed")
                self.max_size = size
                self._evict()
            else:  # literal without indexing (0000) or never indexed (0001)
                field, pos = self._literal(block, pos, 4)
                headers.append(field)
        return headers

    def _entry(self, index: int) -> tuple[bytes, bytes]:
        if 1 <= index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        i = index - len(STATIC_TABLE) - 1
        if 0 <= i < len(self.dynamic):
            return self.dynamic[i]
        raise ProtocolError(f"HPACK index {index} out of range")

    def _literal(self, block: bytes, pos: int, prefix: int) -> tuple[tuple[bytes, bytes], int]:
        index, pos = self._int(block, pos, prefix)
        if index:
            name = self._entry(index)[0]
        else:
            name, pos = self._string(block, pos)
        value, pos = self._string(block, pos)
        return (name, value), pos

    def _add(self, field: tuple[bytes, bytes]) -> None:
        self.dynamic.insert(0, field)
        self.size += len(field[0]) + len(field[1]) + 32
        self._evict()

    def _evict(self) -> None:
        while self.size > self.max_size and self.dynamic:
            name, value = self.dynamic.pop()
            self.size -= len(name) + len(value) + 32

    @staticmethod
    def _int(block: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
        limit = (1 << prefix_bits) - 1
        value = block[pos] & limit
        pos += 1
        if value < limit:
            return value, pos
        shift = 0
        while True:
            if pos >= len(block) or shift > 28:
                raise ProtocolError("HPACK integer truncated or too large")
            b = block[pos]
            pos += 1
            value += (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value, pos

    def _string(self, block: bytes, pos: int) -> tuple[bytes, int]:
        if pos >= len(block):
            raise ProtocolError("HPACK string truncated")
        huffman = block[pos] & 0x80
        length, pos = self._int(block, pos, 7)
        if pos + length > len(block):
            raise ProtocolError("HPACK string truncated")
        raw = block[pos:pos + length]
        pos += length
        if not huffman:
            return raw, pos
        from hpack.exceptions import HPACKDecodingError
        from hpack.huffman_table import decode_huffman

        try:
            return decode_huffman(raw), pos
        except HPACKDecodingError as exc:
            raise ProtocolError(f"HPACK Huffman string: {exc}") from None
