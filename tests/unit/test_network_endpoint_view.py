"""inspect's NetworkSettings.Networks entries (docker's keys) and `network connect --ip` checks."""

from __future__ import annotations

import ipaddress

import pytest

from ctrd import errdefs
from daemon.network.endpoint_view import builtin_id, container_networks, endpoint_id
from daemon.network.networks import Endpoint, new_record
from daemon.network.settings import NetworkSettings
from daemon.network.usernets import check_fixed_ip

CID = "c" * 64
KEYS = ["IPAMConfig", "Links", "Aliases", "MacAddress", "DriverOpts", "NetworkID", "EndpointID", "Gateway",
        "IPAddress", "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "DNSNames"]


def rec(**eps: Endpoint):  # type: ignore[no-untyped-def]
    r = new_record("app", "10.89.7.0/24", "", internal=False, labels={}, options={},
                   taken=[ipaddress.IPv4Network("10.88.0.0/16")])
    for cid, ep in eps.items():
        r = r.with_endpoint(cid, ep)
    return r


def test_default_bridge_entry_running_and_stopped() -> None:
    s = NetworkSettings(mode="bridge", sandbox_key="/run/x", ip_address="10.88.0.2", ip_prefix_len=16,
                        gateway="10.88.0.1", mac_address="02:42:0a:58:00:02", bridge="ctrd0")
    nets = container_networks(CID, "bridge", s, [])
    e = nets["bridge"]
    assert list(e) == KEYS
    assert e["NetworkID"] == builtin_id("bridge") and e["EndpointID"] == endpoint_id(builtin_id("bridge"), CID)
    assert (e["IPAddress"], e["IPPrefixLen"], e["Gateway"]) == ("10.88.0.2", 16, "10.88.0.1")
    assert e["Aliases"] is None and e["IPAMConfig"] is None and e["DNSNames"] is None
    stopped = container_networks(CID, "bridge", None, [])["bridge"]
    assert stopped["IPAddress"] == "" and stopped["EndpointID"] == "" and stopped["NetworkID"] == builtin_id("bridge")
    assert container_networks(CID, "container:abc", None, []) == {}
    assert list(container_networks(CID, "none", None, [])) == ["none"]


def test_user_network_entries_first_and_connected() -> None:
    r = rec(**{CID: Endpoint("web", "10.89.7.50", "02:42:0a:59:07:32", ("www",), "vethx", "eth1", "/run/x",
                             "10.89.7.50", ("192.0.2.53",))})
    nets = container_networks(CID, "bridge", None, [r])
    e = nets["app"]
    assert list(e) == KEYS and e["IPAMConfig"] == {"IPv4Address": "10.89.7.50"}
    assert e["Aliases"] == ["www"] and e["DNSNames"] == ["web", CID[:12], "www"]
    assert (e["IPAddress"], e["IPPrefixLen"], e["Gateway"], e["NetworkID"]) == ("10.89.7.50", 24, r.gateway, r.id)
    never_ran = container_networks("d" * 64, "app", None, [r])
    assert never_ran["app"]["NetworkID"] == r.id and never_ran["app"]["IPAddress"] == ""


def test_endpoint_round_trips_the_new_fields() -> None:
    ep = Endpoint("web", "", "", ("www",), ipam_ip="10.89.7.9", dns=("192.0.2.53",))
    assert Endpoint.from_dict(ep.to_dict()) == ep
    assert Endpoint.from_dict({"name": "old", "ip": ""}).dns == ()  # records written before the fields


def test_check_fixed_ip_names_the_field_and_the_reason() -> None:
    r = rec(**{"e" * 64: Endpoint("other", "", "", ipam_ip="10.89.7.9")})
    check_fixed_ip(r, CID, "10.89.7.10")
    for bad, kind, what in (("10.89.7.1", errdefs.InvalidArgument, "gateway"),
                            ("10.89.7.255", errdefs.InvalidArgument, "broadcast"),
                            ("10.89.8.5", errdefs.InvalidArgument, "outside"),
                            ("nope", errdefs.InvalidArgument, "invalid IPv4"),
                            ("10.89.7.9", errdefs.AlreadyExists, "in use")):
        with pytest.raises(kind, match=f"^ip: .*{what}"):
            check_fixed_ip(r, CID, bad)
