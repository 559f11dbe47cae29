"""The embedded resolver's answers (dnslib wire format), its forwarding to upstream resolvers
(a fake upstream on loopback), and the network records it answers from."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path

import pytest
from dnslib import RCODE, RR, DNSRecord

from ctrd import errdefs
from daemon.network.dns.answers import answer, lookup, servfail
from daemon.network.dns.resolver import Resolver, host_nameservers
from daemon.network.networks import Endpoint, NetworkStore, new_record, plan_addresses, validate_name

TABLE = {"web": ["10.89.0.2"], "www": ["10.89.0.2"], "db": ["10.89.0.3"]}


def q(name: str, qtype: str = "A") -> bytes:
    return bytes(DNSRecord.question(name, qtype).pack())


def test_a_known_name_gets_its_a_record_case_insensitively() -> None:
    reply = DNSRecord.parse(answer(q("WEB."), [TABLE]))
    assert reply.header.rcode == RCODE.NOERROR and reply.header.qr == 1
    assert [(str(rr.rname), str(rr.rdata), rr.ttl) for rr in reply.rr] == [("WEB.", "10.89.0.2", 600)]


def test_aaaa_of_a_known_name_is_an_empty_answer_not_a_forward() -> None:
    reply = DNSRecord.parse(answer(q("db", "AAAA"), [TABLE]))
    assert reply.header.rcode == RCODE.NOERROR and reply.rr == []


def test_unknown_names_are_forwarded_and_tables_merge() -> None:
    assert answer(q("example.org"), [TABLE]) is None
    assert lookup([TABLE, {"web": ["10.90.0.9"]}], "web") == ["10.89.0.2", "10.90.0.9"]
    assert lookup([], "web") is None


def test_garbage_gets_formerr_or_nothing() -> None:
    reply = answer(b"\x12\x34\x01\x00" + b"\x00" * 8 + b"\xff", [TABLE])
    assert reply is not None and reply[:2] == b"\x12\x34" and reply[3] & 0x0F == RCODE.FORMERR
    assert answer(b"\x01", [TABLE]) is None
    assert DNSRecord.parse(servfail(q("x"))).header.rcode == RCODE.SERVFAIL


def test_host_nameservers_keeps_loopback_and_skips_ipv6(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("search lan\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.1\n")
    assert host_nameservers(conf) == [("127.0.0.53", 53), ("192.0.2.1", 53)]
    assert host_nameservers(tmp_path / "missing") == []


def test_forward_relays_the_upstream_reply_and_servfails_when_none_answers() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        upstream.bind(("127.0.0.1", 0))
        upstream.setblocking(False)
        served = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # stands in for the container's 127.0.0.11
        served.bind(("127.0.0.1", 0))
        served.setblocking(False)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.setblocking(False)

        async def fake_upstream() -> None:
            data, peer = await loop.sock_recvfrom(upstream, 4096)
            reply = DNSRecord.parse(data).reply()
            reply.add_answer(*RR.fromZone("example.org. 60 A 192.0.2.7"))
            await loop.sock_sendto(upstream, reply.pack(), peer)

        r = Resolver(upstreams=[upstream.getsockname()])
        try:
            task = asyncio.ensure_future(fake_upstream())
            query = q("example.org")
            await r._forward(served, query, client.getsockname())
            await task
            data = await asyncio.wait_for(loop.sock_recv(client, 4096), 5)
            assert str(DNSRecord.parse(data).rr[0].rdata) == "192.0.2.7"

            dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            dead.bind(("127.0.0.1", 0))  # bound, never answers
            r2 = Resolver(upstreams=[dead.getsockname()])
            # a container's own --dns servers replace the host's
            task = asyncio.ensure_future(fake_upstream())
            await r2._forward(served, query, client.getsockname(), [upstream.getsockname()])
            await task
            data = await asyncio.wait_for(loop.sock_recv(client, 4096), 5)
            assert str(DNSRecord.parse(data).rr[0].rdata) == "192.0.2.7"
            await r2._forward(served, query, client.getsockname())
            data = await asyncio.wait_for(loop.sock_recv(client, 4096), 5)
            assert DNSRecord.parse(data).header.rcode == RCODE.SERVFAIL
            dead.close()
            r2.close()
        finally:
            r.close()
            for s in (upstream, served, client):
                s.close()

    asyncio.run(main())


def test_resolver_control_ops_and_idle() -> None:
    async def main() -> None:
        r = Resolver(upstreams=[])
        try:
            r.handle("names", {"network": "n1", "table": {"Web": ["10.89.0.2"]}})
            assert r.handle("state", {}) == {"served": {}, "tables": {"n1": {"web": ["10.89.0.2"]}}, "upstreams": {}}
            with pytest.raises(errdefs.NotFound, match="does not exist"):
                r.handle("attach", {"netns": "/nonexistent/netns", "networks": ["n1"], "upstreams": ["192.0.2.53"]})
            assert r.upstreams == {}  # nothing half-made
            with pytest.raises(errdefs.InvalidArgument, match=r"upstreams: invalid IPv4 address 'dns\.example'"):
                r.handle("attach", {"netns": "/nonexistent/netns", "networks": ["n1"], "upstreams": ["dns.example"]})
            r.handle("forget", {"network": "n1"})
            assert r.tables == {}
            r.detach("/nonexistent/netns")
            assert r.idle.is_set()
            with pytest.raises(errdefs.InvalidArgument):
                r.handle("bogus", {})
        finally:
            r.close()

    asyncio.run(main())


def test_network_names_and_addresses() -> None:
    assert validate_name("app.v2_x-1") == "app.v2_x-1"
    for bad, msg in (("bridge", "reserved"), ("-x", "invalid"), ("", "invalid"), ("a/b", "invalid")):
        with pytest.raises(errdefs.InvalidArgument, match=msg):
            validate_name(bad)
    taken = [ipaddress.IPv4Network("10.89.0.0/24"), ipaddress.IPv4Network("10.89.2.0/23")]
    assert plan_addresses("", "", taken) == ("10.89.1.0/24", "10.89.1.1")
    assert plan_addresses("10.50.0.0/16", "10.50.0.1", taken) == ("10.50.0.0/16", "10.50.0.1")
    with pytest.raises(errdefs.AlreadyExists, match=r"overlaps 10\.89\.2\.0/23"):
        plan_addresses("10.89.3.0/24", "", taken)
    with pytest.raises(errdefs.InvalidArgument, match="only the subnet's first address"):
        plan_addresses("10.50.0.0/16", "10.50.0.9", taken)
    with pytest.raises(errdefs.InvalidArgument, match="needs --subnet"):
        plan_addresses("", "10.50.0.1", taken)


def test_records_persist_and_are_found_by_name_id_and_prefix(tmp_path: Path) -> None:
    store = NetworkStore(tmp_path)
    rec = new_record("app", "", "", internal=True, labels={"a": "b"}, options={}, taken=[])
    assert rec.bridge == f"br-{rec.id[:12]}" and rec.internal and rec.subnet == "10.89.0.0/24"
    rec = rec.with_endpoint("c" * 64, Endpoint("web", "10.89.0.2", aliases=("www",), veth="vethx", ifname="eth0"))
    rec = rec.with_endpoint("d" * 64, Endpoint("stopped", "", aliases=("gone",)))  # connected, not running
    store.put(rec)
    again = NetworkStore(tmp_path)
    again.load()
    assert again.get("app") == rec and again.get(rec.id[:5]) == rec
    assert again.get("app").dns_table() == {"web": ["10.89.0.2"], "cccccccccccc": ["10.89.0.2"], "www": ["10.89.0.2"]}
    with pytest.raises(errdefs.NotFound, match="network nope not found"):
        again.get("nope")
    with pytest.raises(errdefs.InvalidArgument, match="option 'x'"):
        new_record("b", "", "", internal=False, labels={}, options={"x": "1"}, taken=[])
    named = new_record("b", "", "", internal=False, labels={}, options={"com.docker.network.bridge.name": "mybr0",
                       "com.docker.network.bridge.enable_ip_masquerade": "false"}, taken=[])
    assert named.bridge == "mybr0" and not named.masquerade
    again.delete(rec)
    assert list(again) == [] and not list((tmp_path / "network" / "networks").iterdir())
