"""Pure address arithmetic: default subnet pick, gateway, MAC derivation."""

from __future__ import annotations

import ipaddress

import pytest

from ctrd import errdefs
from daemon.network.addressing import gateway_of, mac_for, parse_subnet, pick_default_subnet


def test_mac_is_02_42_followed_by_the_ip_bytes() -> None:
    assert mac_for("172.17.0.2") == "02:42:ac:11:00:02"
    assert mac_for("10.88.255.254") == "02:42:0a:58:ff:fe"


def test_mac_is_locally_administered_unicast_and_unique_per_ip() -> None:
    macs = {mac_for(str(ipaddress.IPv4Address(0x0A580000 + i))) for i in range(2, 600)}
    assert len(macs) == 598
    for m in list(macs)[:20]:
        first = int(m.split(":")[0], 16)
        assert first & 0x02 and not first & 0x01


def test_gateway_is_the_first_address() -> None:
    assert str(gateway_of(ipaddress.IPv4Network("10.250.3.0/24"))) == "10.250.3.1"


def test_default_subnet_with_an_empty_route_table_is_10_88() -> None:
    assert str(pick_default_subnet([])) == "10.88.0.0/16"


def test_default_subnet_ignores_the_default_route_and_skips_routed_ones() -> None:
    routes = ["0.0.0.0/0", "10.88.0.0/16", "10.89.4.0/24", "192.168.1.0/24", "fd00::/64", "garbage"]
    assert str(pick_default_subnet(routes)) == "10.90.0.0/16"


def test_default_subnet_skips_a_wider_route_covering_several_candidates() -> None:
    assert str(pick_default_subnet(["10.88.0.0/14"])) == "10.92.0.0/16"


def test_default_subnet_pool_exhausted_is_a_clear_error() -> None:
    with pytest.raises(errdefs.FailedPrecondition, match="no free /16"):
        pick_default_subnet(["10.0.0.0/8"])


@pytest.mark.parametrize("bad", ["10.0.0.0/31", "nonsense", "fd00::/64", "10.0.0.0/33"])
def test_parse_subnet_rejects_bad_input(bad: str) -> None:
    with pytest.raises(errdefs.InvalidArgument, match="subnet"):
        parse_subnet(bad)


def test_parse_subnet_normalises_host_bits() -> None:
    assert str(parse_subnet("10.250.7.9/24")) == "10.250.7.0/24"
