"""Firewall against a fake `iptables` that keeps tables, chains and rules the way the real one
answers -N/-C/-A/-I/-D/-S/-F/-X: idempotence, per-daemon chains behind shared hooks, removal by
bridge, chain clean-up that leaves other daemons' rules alone."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

import pytest

from ctrd import errdefs
from daemon.network.firewall import (
    Firewall,
    FirewallNetwork,
    OwnChains,
    names_interface,
    netns_lock,
    network_rules,
    owner_key,
)


class FakeIptables:
    def __init__(self) -> None:
        builtin = {"filter": ["INPUT", "FORWARD", "OUTPUT"], "nat": ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]}
        self.tables: dict[str, dict[str, list[tuple[str, ...]]]] = {t: {c: [] for c in cs} for t, cs in builtin.items()}
        self.builtin = {(t, c) for t, cs in builtin.items() for c in cs}
        self.calls: list[list[str]] = []
        self.fail_next_append = False

    async def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        argv = list(argv)
        self.calls.append(argv)
        assert argv[:2] == ["iptables", "-w"] and argv[2] == "-t"
        chains = self.tables[argv[3]]
        verb, chain, rest = argv[4], argv[5], tuple(argv[6:])
        if verb == "-N":
            if chain in chains:
                return 1, "iptables: Chain already exists."
            chains[chain] = []
            return 0, ""
        if chain not in chains:
            return 1, f"iptables: No chain/target/match by that name. ({chain})"
        rules = chains[chain]
        for target in rest[rest.index("-j") + 1:rest.index("-j") + 2] if "-j" in rest else ():
            if target.startswith("CTRD") and target not in chains:
                return 2, f"iptables: Couldn't load target `{target}'"
        if verb == "-C":
            return (0, "") if rest in rules else (1, "iptables: Bad rule (does a matching rule exist in that chain?).")
        if verb == "-A":
            if self.fail_next_append:
                self.fail_next_append = False
                return 1, "iptables: No chain/target/match by that name."
            rules.append(rest)
            return 0, ""
        if verb == "-I":
            rules.insert(int(rest[0]) - 1, rest[1:])
            return 0, ""
        if verb == "-D":
            if rest not in rules:
                return 1, "iptables: Bad rule (does a matching rule exist in that chain?)."
            rules.remove(rest)
            return 0, ""
        if verb == "-S":
            return 0, "\n".join([f"-N {chain}"] + [f"-A {chain} " + " ".join(r) for r in rules])
        if verb == "-F":
            rules.clear()
            return 0, ""
        if verb == "-X":
            used = any(("-j", chain) == r[-2:] for rs in chains.values() for r in rs)
            if rules or used:
                return 1, f"iptables: CHAIN_DEL failed (Device or resource busy): chain {chain}"
            del chains[chain]
            return 0, ""
        raise AssertionError(f"unexpected iptables call {argv}")

    def ctrd_state(self) -> dict[str, dict[str, list[tuple[str, ...]]]]:
        return {
            t: {c: list(rs) for c, rs in cs.items() if c.startswith("CTRD") or any("CTRD" in " ".join(r) for r in rs)}
            for t, cs in self.tables.items()
        }


NET_A = FirewallNetwork("ctrda", "10.250.1.0/24")
NET_B = FirewallNetwork("ctrdb", "10.250.2.0/24")
ROOT_1 = "/var/lib/ctrd-one"
ROOT_2 = "/var/lib/ctrd-two"
H1 = owner_key(ROOT_1)
H2 = owner_key(ROOT_2)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def fw(ipt: FakeIptables, root: str = ROOT_1) -> Firewall:
    return Firewall(root, run=ipt, lock_name=b"\0ctrd-test-fw-" + os.urandom(6).hex().encode())


def test_add_network_hooks_shared_chains_once_and_puts_its_rules_in_the_daemons_own_chains() -> None:
    ipt = FakeIptables()
    run(fw(ipt).add_network(NET_A))
    t = ipt.tables
    assert t["filter"]["FORWARD"] == [("-j", "CTRD-FORWARD")]
    assert t["nat"]["POSTROUTING"] == [("-j", "CTRD-POSTROUTING")]
    assert t["filter"]["CTRD-FORWARD"] == [("-j", "CTRD-ISOLATION-1"), ("-j", f"CTRD-{H1}-FWD")]
    assert t["filter"]["CTRD-ISOLATION-1"] == [("-j", f"CTRD-{H1}-ISO1")]
    assert t["filter"]["CTRD-ISOLATION-2"] == [("-j", f"CTRD-{H1}-ISO2")]
    assert t["nat"]["CTRD-POSTROUTING"] == [("-j", f"CTRD-{H1}-NAT")]
    assert t["filter"][f"CTRD-{H1}-FWD"] == [
        ("-o", "ctrda", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"),
        ("-i", "ctrda", "-j", "ACCEPT"),
    ]
    assert t["filter"][f"CTRD-{H1}-ISO1"] == [("-i", "ctrda", "!", "-o", "ctrda", "-j", "CTRD-ISOLATION-2")]
    assert t["filter"][f"CTRD-{H1}-ISO2"] == [("-o", "ctrda", "-j", "DROP")]
    assert t["nat"][f"CTRD-{H1}-NAT"] == [("-s", "10.250.1.0/24", "!", "-o", "ctrda", "-j", "MASQUERADE")]
    assert all(c[:2] == ["iptables", "-w"] for c in ipt.calls)
    assert all(len(c) <= 28 for cs in t.values() for c in cs)  # iptables' limit on chain names


def test_owner_key_is_stable_per_root_and_differs_between_roots() -> None:
    assert owner_key(ROOT_1) == owner_key(ROOT_1 + "/") == owner_key("/var/lib/../lib/ctrd-one")
    assert H1 != H2 and len(H1) == 8


def test_setting_up_again_after_a_restart_leaves_exactly_one_copy() -> None:
    ipt = FakeIptables()
    run(fw(ipt).add_network(NET_A))
    once = ipt.ctrd_state()
    run(fw(ipt).add_network(NET_A))  # a new daemon (kill -9, start) over the same kernel
    assert ipt.ctrd_state() == once


def test_the_jump_goes_first_in_forward_before_other_programs_rules() -> None:
    ipt = FakeIptables()
    ipt.tables["filter"]["FORWARD"] = [("-j", "DOCKER-USER"), ("-o", "docker0", "-j", "DOCKER")]
    run(fw(ipt).add_network(NET_A))
    assert ipt.tables["filter"]["FORWARD"] == [("-j", "CTRD-FORWARD"), ("-j", "DOCKER-USER"), ("-o", "docker0", "-j", "DOCKER")]
    run(fw(ipt).remove_network("ctrda"))
    assert run(fw(ipt).remove_chains_if_unused()) is True
    assert ipt.tables["filter"]["FORWARD"] == [("-j", "DOCKER-USER"), ("-o", "docker0", "-j", "DOCKER")]  # untouched


def test_internal_network_stays_on_its_bridge_and_is_not_masqueraded() -> None:
    own = OwnChains("abcd0123")
    rules = network_rules(FirewallNetwork("ctrdi", "10.250.3.0/24", internal=True), own)
    fwd = [r for t, c, r in rules if c == own.forward]
    assert fwd == [("-i", "ctrdi", "-o", "ctrdi", "-j", "ACCEPT"), ("-i", "ctrdi", "-j", "DROP"), ("-o", "ctrdi", "-j", "DROP")]
    assert not [r for t, c, r in rules if t == "nat"]
    assert not [r for t, c, r in network_rules(FirewallNetwork("x", "10.0.0.0/24", masquerade=False)) if t == "nat"]


def test_removing_one_network_keeps_the_others_and_the_chains() -> None:
    ipt = FakeIptables()
    f = fw(ipt)
    run(f.add_network(NET_A))
    run(f.add_network(NET_B))
    run(f.remove_network("ctrda"))
    flat = [r for cs in ipt.ctrd_state().values() for rs in cs.values() for r in rs]
    assert not [r for r in flat if "ctrda" in r]
    assert ("-o", "ctrdb", "-j", "DROP") in ipt.tables["filter"][f"CTRD-{H1}-ISO2"]
    assert run(f.remove_chains_if_unused()) is False  # ctrdb still uses them
    assert "CTRD-FORWARD" in ipt.tables["filter"]
    run(f.remove_network("ctrdb"))
    run(f.remove_network("ctrdb"))  # idempotent
    assert run(f.remove_chains_if_unused()) is True
    assert ipt.ctrd_state() == {"filter": {}, "nat": {}}


def test_two_daemons_keep_their_rules_apart_and_one_leaving_keeps_the_others() -> None:
    ipt = FakeIptables()
    one, two = fw(ipt, ROOT_1), fw(ipt, ROOT_2)
    run(one.add_network(NET_A))
    run(two.add_network(NET_B))
    t = ipt.tables["filter"]
    assert t["CTRD-FORWARD"] == [("-j", "CTRD-ISOLATION-1"), ("-j", f"CTRD-{H1}-FWD"), ("-j", f"CTRD-{H2}-FWD")]
    assert all("ctrdb" not in " ".join(r) for r in t[f"CTRD-{H1}-FWD"])
    # the same bridge name on both would still be each daemon's own: removal by name stays inside
    run(two.remove_network("ctrda"))
    assert ("-i", "ctrda", "-j", "ACCEPT") in t[f"CTRD-{H1}-FWD"]
    # daemon two leaves: all of its chains and jumps go, daemon one's stay whole, hooks stay
    before_one = {c: list(rs) for c, rs in t.items() if H1 in c}
    assert run(two.remove_all()) is False
    assert not [c for tab in ipt.tables.values() for c in tab if H2 in c]
    assert not [r for tab in ipt.tables.values() for rs in tab.values() for r in rs if H2 in " ".join(r)]
    assert {c: list(rs) for c, rs in t.items() if H1 in c} == before_one
    assert t["FORWARD"] == [("-j", "CTRD-FORWARD")] and t["CTRD-ISOLATION-2"] == [("-j", f"CTRD-{H1}-ISO2")]
    assert run(one.remove_all()) is True
    assert ipt.ctrd_state() == {"filter": {}, "nat": {}}


def test_rules_another_ctrd_put_in_the_shared_chains_keep_them() -> None:
    ipt = FakeIptables()
    run(fw(ipt).add_network(NET_A))
    ipt.tables["filter"]["CTRD-FORWARD"].append(("-i", "other0", "-j", "ACCEPT"))  # an older ctrd's rule
    assert run(fw(ipt).remove_all()) is False
    assert ipt.tables["filter"]["FORWARD"] == [("-j", "CTRD-FORWARD")]
    assert ipt.tables["filter"]["CTRD-FORWARD"] == [("-j", "CTRD-ISOLATION-1"), ("-i", "other0", "-j", "ACCEPT")]


def test_a_duplicate_jump_from_two_daemons_starting_at_once_is_removed_too() -> None:
    ipt = FakeIptables()
    f = fw(ipt)
    run(f.add_network(NET_A))
    ipt.tables["filter"]["FORWARD"].append(("-j", "CTRD-FORWARD"))
    ipt.tables["filter"]["CTRD-FORWARD"].append(("-j", f"CTRD-{H1}-FWD"))
    run(f.remove_network("ctrda"))
    assert run(f.remove_chains_if_unused()) is True
    assert ipt.tables["filter"]["FORWARD"] == []


def test_chains_removed_by_another_daemon_midway_are_made_again() -> None:
    ipt = FakeIptables()
    ipt.fail_next_append = True
    run(fw(ipt).add_network(NET_A))
    assert ("-i", "ctrda", "-j", "ACCEPT") in ipt.tables["filter"][f"CTRD-{H1}-FWD"]


def test_the_netns_lock_admits_one_holder_at_a_time() -> None:
    name = b"\0ctrd-test-lock-" + os.urandom(6).hex().encode()
    order: list[str] = []

    async def main() -> None:
        async def holder(tag: str, entered: asyncio.Event | None = None) -> None:
            async with netns_lock(name):
                order.append(f"{tag} in")
                if entered is not None:
                    entered.set()
                await asyncio.sleep(0)  # let the other try while this one holds it
                await asyncio.sleep(0)
                order.append(f"{tag} out")

        first_in = asyncio.Event()
        t1 = asyncio.create_task(holder("a", first_in))
        await first_in.wait()
        await asyncio.gather(holder("b"), t1)

    run(main())
    assert order == ["a in", "a out", "b in", "b out"]


def test_a_lock_held_too_long_is_unavailable_and_names_the_lock() -> None:
    name = b"\0ctrd-test-lock-" + os.urandom(6).hex().encode()

    async def main() -> None:
        async with netns_lock(name), netns_lock(name, timeout=0.05):
            pass

    with pytest.raises(errdefs.Unavailable, match="firewall lock"):
        run(main())


def test_an_iptables_error_is_internal_and_names_the_command() -> None:
    async def broken(argv: Sequence[str]) -> tuple[int, str]:
        return 4, "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied"

    with pytest.raises(errdefs.Internal, match=r"iptables -t filter -N CTRD-ISOLATION-2: .*Permission denied"):
        run(Firewall(ROOT_1, run=broken).add_network(NET_A))


def test_missing_iptables_binary_says_how_to_go_on() -> None:
    with pytest.raises(errdefs.FailedPrecondition, match="--iptables=false"):
        run(Firewall(ROOT_1, iptables="/nonexistent/iptables").add_network(NET_A))


def test_names_interface_matches_in_and_out_not_subnets_or_other_bridges() -> None:
    assert names_interface(["-i", "br0", "-j", "ACCEPT"], "br0")
    assert names_interface(["-s", "10.0.0.0/24", "!", "-o", "br0", "-j", "MASQUERADE"], "br0")
    assert not names_interface(["-i", "br01", "-j", "ACCEPT"], "br0")
    assert not names_interface(["-j", "br0"], "br0")


def test_rules_an_older_ctrd_left_for_its_bridge_in_the_shared_chains_move_to_its_own() -> None:
    ipt = FakeIptables()
    f = fw(ipt)
    run(f.add_network(NET_B))
    old = [("filter", "CTRD-FORWARD", ("-i", "ctrda", "-j", "ACCEPT")),
           ("filter", "CTRD-ISOLATION-1", ("-i", "ctrda", "!", "-o", "ctrda", "-j", "CTRD-ISOLATION-2")),
           ("nat", "CTRD-POSTROUTING", ("-s", "10.250.1.0/24", "!", "-o", "ctrda", "-j", "MASQUERADE"))]
    for table, chain, rule in old:
        ipt.tables[table][chain].append(rule)  # the shared-chain layout of earlier versions
    run(f.add_network(NET_A))
    for table, chain, rule in old:
        assert rule not in ipt.tables[table][chain]
    assert ("-i", "ctrda", "-j", "ACCEPT") in ipt.tables["filter"][f"CTRD-{H1}-FWD"]
    run(f.remove_network("ctrda"))
    run(f.remove_network("ctrdb"))
    assert run(f.remove_chains_if_unused()) is True
    assert ipt.ctrd_state() == {"filter": {}, "nat": {}}
