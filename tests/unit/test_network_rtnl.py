"""The rtnetlink fast path without root: message encoding, ack parsing, fallbacks in _veth_into."""

from __future__ import annotations

import errno
import struct
from typing import Any

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from ctrd import errdefs
from daemon.network import rtnl
from daemon.network.nsops import NetOps


def _decode(cls: Any, step: rtnl.Step) -> Any:
    _, msg, mtype, flags = step
    msg["header"].update({"type": mtype, "flags": flags, "sequence_number": 1, "pid": 0})
    msg.encode()
    out = cls(msg.data)
    out.decode()
    return out


def test_veth_message_puts_the_peer_in_the_netns_with_its_name_mac_and_index() -> None:
    m = _decode(ifinfmsg, rtnl.veth_with_peer_in("vethabc1234", 7, 42, "eth0", "02:42:0a:00:00:02", 1500, 2))
    assert m.get_attr("IFLA_IFNAME") == "vethabc1234" and m.get_attr("IFLA_MASTER") == 7
    assert m["flags"] & rtnl.IFF_UP and m["change"] & rtnl.IFF_UP
    info = m.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "veth"
    peer = info.get_attr("IFLA_INFO_DATA").get_attr("VETH_INFO_PEER")
    assert peer["index"] == 2 and peer["flags"] == 0  # the peer cannot come up in the same request
    assert peer.get_attr("IFLA_IFNAME") == "eth0" and peer.get_attr("IFLA_NET_NS_FD") == 42
    assert peer.get_attr("IFLA_ADDRESS") == "02:42:0a:00:00:02"


def test_address_and_route_messages() -> None:
    a = _decode(ifaddrmsg, rtnl.ipv4_address(2, "10.250.0.5", 24, "eth0"))
    assert (a["index"], a["prefixlen"], a.get_attr("IFA_LOCAL")) == (2, 24, "10.250.0.5")
    r = _decode(rtmsg, rtnl.default_route("10.250.0.1", 2))
    assert (r["dst_len"], r.get_attr("RTA_GATEWAY"), r.get_attr("RTA_OIF")) == (0, "10.250.0.1", 2)


def test_messages_parser_reads_acks_errors_and_other_messages() -> None:
    def err(seq: int, code: int) -> bytes:
        return struct.pack("=IHHIIi", 36, rtnl.NLMSG_ERROR, 0, seq, 0, code) + b"\0" * 16

    other = struct.pack("=IHHII", 20, 16, 0, 9, 0) + b"\0\0\0\0"
    got = rtnl._messages(err(1, 0) + err(2, -errno.EEXIST) + other)
    assert [(s, c) for s, c, _ in got] == [(1, 0), (2, errno.EEXIST), (9, None)]
    assert rtnl._messages(b"\x01\x00") == []


def test_rtnl_error_names_the_step() -> None:
    e = rtnl.RtnlError(errno.ENETUNREACH, "add default route via 10.0.0.1")
    assert e.errno == errno.ENETUNREACH and str(e).endswith("add default route via 10.0.0.1: network is unreachable")


class FakeRt:
    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.batches: list[list[str]] = []

    def run(self, steps: list[rtnl.Step]) -> None:
        self.batches.append([s[0] for s in steps])
        if self.errors:
            code = self.errors.pop(0)
            if code:
                raise rtnl.RtnlError(code, steps[0][0])

    def link_index(self, name: str) -> int | None:
        return 5


def _ops(rt: FakeRt) -> tuple[NetOps, list[str]]:
    ops = object.__new__(NetOps)
    deleted: list[str] = []
    ops.rt = rt  # type: ignore[assignment]
    ops._bridges = {"ctrdt0": 3}
    ops._index = lambda name, ipr=None: 3  # type: ignore[method-assign]
    ops.link_delete = lambda name: deleted.append(name) or True  # type: ignore[method-assign]
    return ops, deleted


def _attach(ops: NetOps, ns: FakeRt) -> None:
    ops._veth_into(ns, 9, rtnl.link_up(1, "lo"), "vethx", "ctrdt0", "10.250.0.2", 24, "10.250.0.1", "02:42:0a:fa:00:02")  # type: ignore[arg-type]


def test_taken_peer_index_falls_back_to_the_kernels_pick() -> None:
    host, ns = FakeRt(errno.EBUSY, 0), FakeRt()
    ops, _ = _ops(host)
    _attach(ops, ns)
    assert len(host.batches) == 2
    assert ns.batches == [["bring lo up", "bring eth0 up", "add address 10.250.0.2/24 to eth0", "add default route via 10.250.0.1"]]


def test_name_clash_is_already_exists_and_config_failure_deletes_the_pair() -> None:
    ops, deleted = _ops(FakeRt(errno.EEXIST))
    with pytest.raises(errdefs.AlreadyExists, match="link vethx already exists"):
        _attach(ops, FakeRt())
    assert deleted == []
    ops, deleted = _ops(FakeRt())
    with pytest.raises(errdefs.Internal, match=r"cannot configure veth vethx \(10\.250\.0\.2/24\): .*network is unreachable"):
        _attach(ops, FakeRt(errno.ENETUNREACH))
    assert deleted == ["vethx"]


def test_stale_bridge_index_is_refreshed_once() -> None:
    host = FakeRt(errno.EINVAL, 0)
    ops, _ = _ops(host)
    _attach(ops, FakeRt())
    assert len(host.batches) == 2
    ops, _ = _ops(FakeRt(errno.EINVAL, errno.EINVAL))
    with pytest.raises(errdefs.Internal, match=r"^cannot create veth vethx: invalid argument$"):
        _attach(ops, FakeRt())
