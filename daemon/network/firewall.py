"""ctrd's own firewall chains: accept its bridges' traffic, masquerade its subnets, isolate networks.

Why: dockerd (and firewalld, ufw) set the FORWARD policy to DROP and load br_netfilter
(`net.bridge.bridge-nf-call-iptables=1`), so frames crossing any other bridge go through iptables'
FORWARD chain and are dropped — even between two containers on the same bridge. Docker's answer is
its own chains with one jump each from the built-in chains; ctrd does the same with its own names
and never edits a rule of another program's chains:

    filter FORWARD      -j CTRD-FORWARD            (inserted first, as docker inserts its own)
    filter CTRD-FORWARD -j CTRD-ISOLATION-1        (always its first rule)
                        -o BR -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT   (per network)
                        -i BR -j ACCEPT            (out of the bridge and within it)
      internal network: -i BR -o BR -j ACCEPT, -i BR -j DROP, -o BR -j DROP
    filter CTRD-ISOLATION-1  -i BR ! -o BR -j CTRD-ISOLATION-2   (per network)
    filter CTRD-ISOLATION-2  -o BR -j DROP                       (per network)
    nat POSTROUTING     -j CTRD-POSTROUTING
    nat CTRD-POSTROUTING -s SUBNET ! -o BR -j MASQUERADE         (per network with outbound NAT)

The two isolation stages are docker's: one rule per network in each, instead of one per pair.

Tooling: the `iptables` command found on PATH, always with `-w` (wait for the xtables lock rather
than fail when another program holds it). dockerd (libnetwork) execs that same `iptables`; on
Debian 12 it is iptables-nft through the alternatives system, on older or tuned hosts
iptables-legacy. Both backends' hooks run, and an ACCEPT in one cannot undo a DROP policy in the
other, so ctrd must write to the backend docker writes to: the same binary does that on every
host. python-iptables (iptc) drives libiptc, i.e. the legacy backend only, which would put ctrd's
ACCEPT beside, not before, docker's nf_tables DROP; hand-built nftables netlink is what the issue
rules out. One command costs ~1.5 ms here, and rules change only when a network appears or goes
(never per container), so plain commands with `-C` (check) before `-A` keep set-up idempotent
across daemon restarts and kill -9: a rule that is there is never added twice.

Several daemons may share a host (tests do): the chains are shared, each network's rules name its
bridge, removal deletes only the rules that name it, and the jumps and chains go only when no
network's rule is left in them.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ctrd import errdefs

FORWARD = "CTRD-FORWARD"
ISOLATION_1 = "CTRD-ISOLATION-1"
ISOLATION_2 = "CTRD-ISOLATION-2"
POSTROUTING = "CTRD-POSTROUTING"

# (table, chain, built-in chain that jumps to it or "")
CHAINS: tuple[tuple[str, str, str], ...] = (
    ("filter", ISOLATION_2, ""),
    ("filter", ISOLATION_1, ""),
    ("filter", FORWARD, "FORWARD"),
    ("nat", POSTROUTING, "POSTROUTING"),
)
_ISOLATION_JUMP = ("-j", ISOLATION_1)

Runner = Callable[[Sequence[str]], Awaitable[tuple[int, str]]]


async def run_command(argv: Sequence[str]) -> tuple[int, str]:
    """Run one command; (exit code, stdout + stderr)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
    except FileNotFoundError:
        raise errdefs.FailedPrecondition(
            f"{argv[0]} not found: install iptables, or start ctrd with --iptables=false"
        ) from None
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode(errors="replace").strip()


@dataclass(frozen=True, slots=True)
class FirewallNetwork:
    bridge: str
    subnet: str
    internal: bool = False
    masquerade: bool = True


def network_rules(net: FirewallNetwork) -> list[tuple[str, str, tuple[str, ...]]]:
    """(table, chain, rule) for one network, in the order they are appended."""
    b = net.bridge
    rules: list[tuple[str, str, tuple[str, ...]]] = [
        ("filter", ISOLATION_1, ("-i", b, "!", "-o", b, "-j", ISOLATION_2)),
        ("filter", ISOLATION_2, ("-o", b, "-j", "DROP")),
    ]
    if net.internal:
        rules += [
            ("filter", FORWARD, ("-i", b, "-o", b, "-j", "ACCEPT")),
            ("filter", FORWARD, ("-i", b, "-j", "DROP")),
            ("filter", FORWARD, ("-o", b, "-j", "DROP")),
        ]
    else:
        rules += [
            ("filter", FORWARD, ("-o", b, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")),
            ("filter", FORWARD, ("-i", b, "-j", "ACCEPT")),
        ]
        if net.masquerade:
            rules.append(("nat", POSTROUTING, ("-s", net.subnet, "!", "-o", b, "-j", "MASQUERADE")))
    return rules


def names_interface(rule: Sequence[str], bridge: str) -> bool:
    """Does an `iptables -S` rule match on `bridge` as its in or out interface?"""
    return any(rule[i] in ("-i", "-o") and rule[i + 1] == bridge for i in range(len(rule) - 1))


class Firewall:
    def __init__(self, *, iptables: str = "iptables", run: Runner = run_command) -> None:
        self.iptables = iptables
        self._run = run
        self._lock = asyncio.Lock()

    async def _ipt(self, table: str, *args: str) -> tuple[int, str]:
        return await self._run([self.iptables, "-w", "-t", table, *args])

    async def _must(self, table: str, *args: str) -> None:
        rc, out = await self._ipt(table, *args)
        if rc != 0:
            raise errdefs.Internal(f"iptables -t {table} {shlex.join(args)}: {out or f'exit status {rc}'}")

    async def _ensure_rule(self, table: str, chain: str, rule: Sequence[str], *, first: bool = False) -> None:
        rc, _ = await self._ipt(table, "-C", chain, *rule)
        if rc == 0:
            return
        if first:
            await self._must(table, "-I", chain, "1", *rule)
        else:
            await self._must(table, "-A", chain, *rule)

    async def ensure_chains(self) -> None:
        """ctrd's chains and the one jump into each from the built-in chains (idempotent)."""
        for table, chain, hook in CHAINS:
            rc, out = await self._ipt(table, "-N", chain)
            if rc != 0 and "exists" not in out:
                raise errdefs.Internal(f"iptables -t {table} -N {chain}: {out or f'exit status {rc}'}")
            if chain == FORWARD:
                await self._ensure_rule(table, FORWARD, _ISOLATION_JUMP, first=True)
            if hook:
                await self._ensure_rule(table, hook, ("-j", chain), first=True)

    async def add_network(self, net: FirewallNetwork) -> None:
        """Set up one network's rules; a rule that is there already stays one rule."""
        async with self._lock:
            for attempt in (1, 2):
                try:
                    await self.ensure_chains()
                    for table, chain, rule in network_rules(net):
                        await self._ensure_rule(table, chain, rule)
                    return
                except errdefs.Internal:
                    # another daemon may have removed the (then empty) chains between our steps
                    if attempt == 2:
                        raise

    async def _rules(self, table: str, chain: str) -> list[list[str]] | None:
        """The rules of a chain as `iptables -S` argument lists, None if the chain is missing."""
        rc, out = await self._ipt(table, "-S", chain)
        if rc != 0:
            return None
        return [shlex.split(line)[2:] for line in out.splitlines() if line.startswith("-A ")]

    async def remove_network(self, bridge: str) -> None:
        """Delete every rule in ctrd's chains that names `bridge` (idempotent)."""
        async with self._lock:
            for table, chain, _ in CHAINS:
                for rule in await self._rules(table, chain) or []:
                    if names_interface(rule, bridge):
                        await self._ipt(table, "-D", chain, *rule)  # gone already is fine

    async def remove_chains_if_unused(self) -> bool:
        """Remove the jumps and ctrd's chains when no network's rule is left in them."""
        async with self._lock:
            for table, chain, _ in CHAINS:
                rules = await self._rules(table, chain)
                if rules and any(r != list(_ISOLATION_JUMP) for r in rules):
                    return False
            for table, chain, hook in reversed(CHAINS):
                if hook:
                    while (await self._ipt(table, "-D", hook, "-j", chain))[0] == 0:
                        pass  # a duplicate from two daemons starting at once goes too
            for table, chain, _ in reversed(CHAINS):
                await self._ipt(table, "-F", chain)
            for table, chain, _ in reversed(CHAINS):
                await self._ipt(table, "-X", chain)
            return True
