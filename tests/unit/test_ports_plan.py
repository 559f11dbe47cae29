"""Daemon-side port planning: -p validation, port 0 picking, -P, shim PortForward messages."""

from __future__ import annotations

import socket

import pytest

from ctrd import errdefs
from daemon.network.portmap import parse_exposed, pick_free_port, resolve_ports
from daemon.network.settings import NetworkSettings, PortMapping


def fake_picker() -> tuple[list[tuple[str, str]], object]:
    calls: list[tuple[str, str]] = []

    def pick(proto: str, host_ip: str) -> int:
        calls.append((proto, host_ip))
        return 40000 + len(calls)

    return calls, pick


def test_explicit_ports_pass_through_and_empty_host_ip_is_all_addresses() -> None:
    calls, pick = fake_picker()
    out = resolve_ports([PortMapping("tcp", "", 8080, 80), PortMapping("UDP", "127.0.0.1", 5353, 53)], picker=pick)  # type: ignore[arg-type]
    assert out == [PortMapping("tcp", "0.0.0.0", 8080, 80), PortMapping("udp", "127.0.0.1", 5353, 53)]
    assert calls == []


def test_host_port_zero_is_picked_per_protocol_and_ip() -> None:
    calls, pick = fake_picker()
    out = resolve_ports([PortMapping("tcp", "127.0.0.1", 0, 80)], picker=pick)  # type: ignore[arg-type]
    assert out == [PortMapping("tcp", "127.0.0.1", 40001, 80)]
    assert calls == [("tcp", "127.0.0.1")]


def test_publish_all_exposed_skips_already_published_ports() -> None:
    _, pick = fake_picker()
    out = resolve_ports([PortMapping("tcp", "127.0.0.1", 8080, 80)], ["80/tcp", "443", "53/udp"], picker=pick)  # type: ignore[arg-type]
    assert out == [
        PortMapping("tcp", "127.0.0.1", 8080, 80),
        PortMapping("tcp", "0.0.0.0", 40001, 443),
        PortMapping("udp", "0.0.0.0", 40002, 53),
    ]


@pytest.mark.parametrize(
    "pm,match",
    [
        (PortMapping("sctp", "", 1, 80), "protocol"),
        (PortMapping("tcp", "", 1, 0), "container port"),
        (PortMapping("tcp", "", 70000, 80), "host port"),
        (PortMapping("tcp", "localhost", 1, 80), "host ip"),
    ],
)
def test_invalid_mappings(pm: PortMapping, match: str) -> None:
    with pytest.raises(errdefs.InvalidArgument, match=match):
        resolve_ports([pm])


def test_same_host_port_twice_is_rejected() -> None:
    with pytest.raises(errdefs.InvalidArgument, match="published twice"):
        resolve_ports([PortMapping("tcp", "", 8080, 80), PortMapping("tcp", "0.0.0.0", 8080, 81)])


@pytest.mark.parametrize("spec", ["", "abc", "80/sctp", "0", "70000/tcp"])
def test_parse_exposed_rejects(spec: str) -> None:
    with pytest.raises(errdefs.InvalidArgument, match="exposed port"):
        parse_exposed(spec)


def test_pick_free_port_returns_a_bindable_port() -> None:
    port = pick_free_port("tcp", "127.0.0.1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_settings_round_trip_through_json() -> None:
    import json

    s = NetworkSettings(
        mode="bridge", sandbox_key="/run/ctrd/netns/abc", ip_address="10.88.0.5", ip_prefix_len=16,
        gateway="10.88.0.1", mac_address="02:42:0a:58:00:05", bridge="ctrd0", veth_host="veth1234567",
        ports=[PortMapping("tcp", "0.0.0.0", 8080, 80)],
    )
    assert NetworkSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
