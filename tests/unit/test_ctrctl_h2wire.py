"""ctrctl.h2wire (ctrctl's own HTTP/2 client framing and HPACK) against the python-hyper `h2` and
`hpack` libraries as the peer, in memory: what one side writes, the other reads."""

from __future__ import annotations

import struct

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, RemoteSettingsChanged, RequestReceived, StreamEnded, WindowUpdated
from hpack import Encoder
from hpack.table import HeaderTable

from ctrctl import h2wire

REQUEST = [(":method", "POST"), (":scheme", "http"), (":path", "/ctrd.v1.Containers/List"),
           (":authority", "localhost"), ("te", "trailers"), ("content-type", "application/grpc"),
           ("user-agent", "ctrctl"), ("grpc-timeout", "30000m")]


def pair(window: int = 8 << 20) -> tuple[h2wire.Connection, H2Connection]:
    client = h2wire.Connection(window)
    server = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
    server.initiate_connection()
    client.receive(server.data_to_send())
    server.receive_data(client.pending())
    client.receive(server.data_to_send())  # the server's SETTINGS ack
    return client, server


def exchange(client: h2wire.Connection, server: H2Connection) -> tuple[list[object], list[h2wire.Event]]:
    """Client bytes to the server, then the server's to the client: both sides' events."""
    server_events = server.receive_data(client.pending())
    return server_events, client.receive(server.data_to_send())


def test_static_table_is_rfc_7541_appendix_a() -> None:
    assert tuple(HeaderTable.STATIC_TABLE) == h2wire.STATIC_TABLE


def test_request_headers_and_data_reach_the_peer() -> None:
    client, server = pair()
    sid = client.open_stream(REQUEST)
    payload = b"\0\0\0\0\5hello"
    client.send_data(sid, payload, end=True)
    events, _ = exchange(client, server)
    req = next(e for e in events if isinstance(e, RequestReceived))
    assert req.stream_id == 1 and list(req.headers) == REQUEST
    assert b"".join(e.data for e in events if isinstance(e, DataReceived)) == payload
    assert any(isinstance(e, StreamEnded) for e in events)
    assert client.send_room(sid) is None  # our side is closed


def test_response_trailers_huffman_and_dynamic_table_decode() -> None:
    client, server = pair()
    sid = client.open_stream(REQUEST)
    client.end_stream(sid)
    exchange(client, server)
    server.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
    server.send_data(sid, b"\0\0\0\0\2ok", pad_length=7)
    server.send_headers(sid, [("grpc-status", "5"), ("grpc-message", "no such container: web" * 3),
                              ("ctrd-reason", "container-not-found")], end_stream=True)
    got = client.receive(server.data_to_send())
    kinds = [type(e).__name__ for e in got]
    assert kinds == ["Headers", "Data", "Headers", "Ended"]
    assert got[0].headers == [(b":status", b"200"), (b"content-type", b"application/grpc")]  # type: ignore[union-attr]
    assert got[1].data == b"\0\0\0\0\2ok" and got[1].flow == 7 + 1 + 7  # type: ignore[union-attr]
    assert dict(got[2].headers)[b"grpc-message"] == b"no such container: web" * 3  # type: ignore[union-attr]
    # a second call: the server's encoder now refers to its dynamic table
    sid2 = client.open_stream(REQUEST)
    client.end_stream(sid2)
    exchange(client, server)
    server.send_headers(sid2, [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "0")],
                        end_stream=True)
    got = client.receive(server.data_to_send())
    assert [type(e).__name__ for e in got] == ["Headers", "Ended"]
    assert dict(got[0].headers)[b"grpc-status"] == b"0"  # type: ignore[union-attr]


@pytest.mark.parametrize("huffman", [True, False])
def test_hpack_blocks_of_another_encoder_decode(huffman: bool) -> None:
    enc, dec = Encoder(), h2wire._Decoder()
    blocks = [
        [(":status", "200"), ("content-type", "application/grpc"), ("x-long", "v" * 300)],
        [(":status", "200"), ("content-type", "application/grpc"), ("x-long", "v" * 300)],
        [("grpc-status", "0"), ("secret", "s3cr3t")],
    ]
    for headers in blocks:
        sensitive = [(n, v, n == "secret") for n, v in headers]
        block = enc.encode(sensitive, huffman=huffman)
        assert dec.decode(block) == [(n.encode(), v.encode()) for n, v in headers]
    enc.header_table_size = 256  # a size update at the start of the next block evicts entries
    block = enc.encode([("x-long", "w" * 10)], huffman=huffman)
    assert dec.decode(block) == [(b"x-long", b"w" * 10)]
    assert dec.max_size == 256 and dec.size <= 256


def test_our_header_blocks_decode_with_hpack() -> None:
    from hpack import Decoder

    long_value = "x" * 1000  # integers past their prefix
    headers = [*REQUEST, ("x-long", long_value)]
    assert [(n, v) for n, v in Decoder().decode(h2wire._encode(headers))] == headers


def test_flow_control_follows_the_peers_windows_and_settings() -> None:
    client, server = pair()
    sid = client.open_stream(REQUEST)
    assert client.send_room(sid) == 16384  # min(stream 65535, connection 65535, max frame 16384)
    sent = 0
    while (room := client.send_room(sid)) and room > 0:
        client.send_data(sid, b"x" * room, end=False)
        sent += room
    assert sent == 65535 and client.send_room(sid) == 0
    events, _ = exchange(client, server)
    assert sum(e.flow_controlled_length for e in events if isinstance(e, DataReceived)) == 65535
    server.acknowledge_received_data(40000, sid)
    server.update_settings({4: 100000})  # SETTINGS_INITIAL_WINDOW_SIZE: +34465 for open streams
    client.receive(server.data_to_send())
    server.receive_data(client.pending())  # our SETTINGS ack
    assert client.send_room(sid) == 16384
    assert client._send_windows[sid] == 40000 + 34465 and client._send_conn == 40000


def test_ping_is_answered_and_data_of_a_forgotten_stream_still_counts() -> None:
    client, server = pair()
    sid = client.open_stream(REQUEST)
    client.end_stream(sid)
    exchange(client, server)
    client.reset_stream(sid)  # we gave up on the call: later data is acknowledged on the connection only
    server.receive_data(client.pending())
    server.ping(b"12345678")
    client.receive(server.data_to_send())
    out = client.pending()
    assert h2wire.frame(h2wire.PING, h2wire.ACK, 0, b"12345678") in out


def test_acks_open_window_updates_for_stream_and_connection() -> None:
    client, server = pair()
    sid = client.open_stream(REQUEST)
    client.end_stream(sid)
    exchange(client, server)
    server.send_headers(sid, [(":status", "200")])
    server.send_data(sid, b"a" * 1000)
    got = client.receive(server.data_to_send())
    client.ack(sid, got[-1].flow)  # type: ignore[union-attr]
    events = server.receive_data(client.pending())
    updates = {e.stream_id: e.delta for e in events if isinstance(e, WindowUpdated)}
    assert updates == {0: 1000, sid: 1000}
    assert not any(isinstance(e, RemoteSettingsChanged) for e in events)


@pytest.mark.parametrize("raw, why", [
    (h2wire.frame(h2wire.PUSH_PROMISE, h2wire.END_HEADERS, 1, b"\0\0\0\2"), "PUSH_PROMISE"),
    (h2wire.frame(h2wire.CONTINUATION, h2wire.END_HEADERS, 1, b""), "CONTINUATION"),
    (struct.pack(">HBBBI", 20000 >> 8, 20000 & 0xFF, h2wire.DATA, 0, 1), "over the 16384"),
    (h2wire.frame(h2wire.SETTINGS, 0, 0, b"\0\5\0\0\0\1"), "MAX_FRAME_SIZE"),
    (h2wire.frame(h2wire.HEADERS, h2wire.END_HEADERS, 1, b"\xff\x80"), "truncated"),
])
def test_protocol_errors_name_what_broke(raw: bytes, why: str) -> None:
    client = h2wire.Connection(65535)
    client.open_stream(REQUEST)
    with pytest.raises(h2wire.ProtocolError, match=why):
        client.receive(raw)


def test_frames_split_across_reads_are_reassembled() -> None:
    client, server = pair()
    sid = client.open_stream(REQUEST)
    client.end_stream(sid)
    exchange(client, server)
    server.send_headers(sid, [(":status", "200")])
    server.send_data(sid, b"b" * 5000, end_stream=True)
    wire = server.data_to_send()
    got: list[h2wire.Event] = []
    for i in range(0, len(wire), 7):
        got += client.receive(wire[i:i + 7])
    assert [type(e).__name__ for e in got] == ["Headers", "Data", "Ended"]
    assert got[1].data == b"b" * 5000  # type: ignore[union-attr]
