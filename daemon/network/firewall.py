"""ctrd's own firewall chains: accept its bridges' traffic, masquerade its subnets, isolate networks.

Why: dockerd (and firewalld, ufw) set the FORWARD policy to DROP and load br_netfilter
(`net.bridge.bridge-nf-call-iptables=1`), so frames crossing any other bridge go through iptables'
FORWARD chain and are dropped — even between two containers on the same bridge. Docker's answer is
its own chains with one jump each from the built-in chains; ctrd does the same with its own names
and never edits a rule of another program's chains.

Several ctrd daemons may share a host (the tests run many at once, users may too), so each daemon
keeps its rules in chains of its own, named from a short hash of its root (`CTRD-<h>-...`), and
the shared chains hold only one jump per daemon:

    filter FORWARD            -j CTRD-FORWARD             (shared; inserted first, as docker does)
    filter CTRD-FORWARD       -j CTRD-ISOLATION-1         (shared; always its first rule)
                              -j CTRD-<h>-FWD             (one per daemon)
    filter CTRD-ISOLATION-1   -j CTRD-<h>-ISO1            (one per daemon)
    filter CTRD-ISOLATION-2   -j CTRD-<h>-ISO2            (one per daemon)
    nat POSTROUTING           -j CTRD-POSTROUTING         (shared)
    nat CTRD-POSTROUTING      -j CTRD-<h>-NAT             (one per daemon)

    filter CTRD-<h>-FWD   -o BR -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT   (per network)
                          -i BR -j ACCEPT                 (out of the bridge and within it)
       internal network:  -i BR -o BR -j ACCEPT, -i BR -j DROP, -o BR -j DROP
    filter CTRD-<h>-ISO1  -i BR ! -o BR -j CTRD-ISOLATION-2
    filter CTRD-<h>-ISO2  -o BR -j DROP
    nat CTRD-<h>-NAT      -s SUBNET ! -o BR -j MASQUERADE (per network with outbound NAT)

The two isolation stages are docker's (one rule per network in each, instead of one per pair);
stage 1 of any daemon leads to the shared stage 2, so networks of different daemons are isolated
from each other too. One daemon's set-up and clean-up touch only its own chains and its own jumps;
the shared chains and the hooks go only when no daemon's jump is left in them. Every change runs
under a lock held across ctrd daemons of the same network namespace (the namespace iptables
belongs to): an abstract unix socket, released by the kernel when its holder dies.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shlex
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from ctrd import errdefs

FORWARD = "CTRD-FORWARD"
ISOLATION_1 = "CTRD-ISOLATION-1"
ISOLATION_2 = "CTRD-ISOLATION-2"
POSTROUTING = "CTRD-POSTROUTING"

# (table, shared chain, built-in chain that jumps to it or "")
SHARED: tuple[tuple[str, str, str], ...] = (
    ("filter", ISOLATION_2, ""),
    ("filter", ISOLATION_1, ""),
    ("filter", FORWARD, "FORWARD"),
    ("nat", POSTROUTING, "POSTROUTING"),
)
CHAINS = SHARED  # the shared chains, by their older name
_ISOLATION_JUMP = ("-j", ISOLATION_1)
LOCK_NAME = b"\0ctrd-firewall-lock"  # abstract: one per network namespace, gone with its holder
LOCK_TIMEOUT = 60.0
ATTEMPTS = 3  # set-up tries when chains vanish midway (only a ctrd that predates the lock does that)

Runner = Callable[[Sequence[str]], Awaitable[tuple[int, str]]]


def owner_key(root: str) -> str:
    """The 8 hex digits naming one daemon's chains: a hash of its root directory."""
    return hashlib.sha256(os.path.abspath(root).encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class OwnChains:
    """One daemon's chains: (table, chain, shared chain that jumps to it)."""

    key: str

    @property
    def forward(self) -> str:
        return f"CTRD-{self.key}-FWD"

    @property
    def isolation_1(self) -> str:
        return f"CTRD-{self.key}-ISO1"

    @property
    def isolation_2(self) -> str:
        return f"CTRD-{self.key}-ISO2"

    @property
    def nat(self) -> str:
        return f"CTRD-{self.key}-NAT"

    def all(self) -> tuple[tuple[str, str, str], ...]:
        return (
            ("filter", self.isolation_2, ISOLATION_2),
            ("filter", self.isolation_1, ISOLATION_1),
            ("filter", self.forward, FORWARD),
            ("nat", self.nat, POSTROUTING),
        )


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


@contextlib.asynccontextmanager
async def netns_lock(name: bytes = LOCK_NAME, timeout: float = LOCK_TIMEOUT) -> AsyncIterator[None]:
    """Held by one ctrd of this network namespace at a time (binding an abstract socket name)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        deadline, pause = time.monotonic() + timeout, 0.002
        while True:
            try:
                sock.bind(name)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise errdefs.Unavailable(
                        f"another ctrd held the firewall lock for over {timeout:.0f} s"
                    ) from None
                await asyncio.sleep(pause)  # the holder runs a few iptables commands: milliseconds
                pause = min(pause * 2, 0.05)
        yield
    finally:
        sock.close()


@dataclass(frozen=True, slots=True)
class FirewallNetwork:
    bridge: str
    subnet: str
    internal: bool = False
    masquerade: bool = True


def network_rules(net: FirewallNetwork, own: OwnChains | None = None) -> list[tuple[str, str, tuple[str, ...]]]:
    """(table, chain, rule) for one network, in the order they are appended to `own`'s chains."""
    own = own or OwnChains("0" * 8)
    b = net.bridge
    rules: list[tuple[str, str, tuple[str, ...]]] = [
        ("filter", own.isolation_1, ("-i", b, "!", "-o", b, "-j", ISOLATION_2)),
        ("filter", own.isolation_2, ("-o", b, "-j", "DROP")),
    ]
    if net.internal:
        rules += [
            ("filter", own.forward, ("-i", b, "-o", b, "-j", "ACCEPT")),
            ("filter", own.forward, ("-i", b, "-j", "DROP")),
            ("filter", own.forward, ("-o", b, "-j", "DROP")),
        ]
    else:
        rules += [
            ("filter", own.forward, ("-o", b, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")),
            ("filter", own.forward, ("-i", b, "-j", "ACCEPT")),
        ]
        if net.masquerade:
            rules.append(("nat", own.nat, ("-s", net.subnet, "!", "-o", b, "-j", "MASQUERADE")))
    return rules


def names_interface(rule: Sequence[str], bridge: str) -> bool:
    """Does an `iptables -S` rule match on `bridge` as its in or out interface?"""
    return any(rule[i] in ("-i", "-o") and rule[i + 1] == bridge for i in range(len(rule) - 1))


class Firewall:
    """One daemon's firewall rules (`owner`: its root directory, hashed into its chains' names)."""

    def __init__(
        self, owner: str | os.PathLike[str], *, iptables: str = "iptables", run: Runner = run_command,
        lock_name: bytes = LOCK_NAME,
    ) -> None:
        self.iptables = iptables
        self.own = OwnChains(owner_key(os.fspath(owner)))
        self._run = run
        self._lock = asyncio.Lock()
        self._lock_name = lock_name

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        async with self._lock, netns_lock(self._lock_name):
            yield

    async def _ipt(self, table: str, *args: str) -> tuple[int, str]:
        return await self._run([self.iptables, "-w", "-t", table, *args])

    async def _must(self, table: str, *args: str) -> None:
        rc, out = await self._ipt(table, *args)
        if rc != 0:
            raise errdefs.Internal(f"iptables -t {table} {shlex.join(args)}: {out or f'exit status {rc}'}")

    async def _new_chain(self, table: str, chain: str) -> None:
        rc, out = await self._ipt(table, "-N", chain)
        if rc != 0 and "exists" not in out:
            raise errdefs.Internal(f"iptables -t {table} -N {chain}: {out or f'exit status {rc}'}")

    async def _ensure_rule(self, table: str, chain: str, rule: Sequence[str], *, first: bool = False) -> None:
        rc, _ = await self._ipt(table, "-C", chain, *rule)
        if rc == 0:
            return
        if first:
            await self._must(table, "-I", chain, "1", *rule)
        else:
            await self._must(table, "-A", chain, *rule)

    async def ensure_chains(self) -> None:
        """The shared chains with their hooks, this daemon's chains and its jumps (idempotent)."""
        for table, chain, hook in SHARED:
            await self._new_chain(table, chain)
            if chain == FORWARD:
                await self._ensure_rule(table, FORWARD, _ISOLATION_JUMP, first=True)
            if hook:
                await self._ensure_rule(table, hook, ("-j", chain), first=True)
        for table, chain, shared in self.own.all():
            await self._new_chain(table, chain)
            await self._ensure_rule(table, shared, ("-j", chain))

    async def add_network(self, net: FirewallNetwork) -> None:
        """Set up one network's rules; a rule that is there already stays one rule."""
        async with self._locked():
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    await self.ensure_chains()
                    await self._drop_shared_rules_of(net.bridge)
                    for table, chain, rule in network_rules(net, self.own):
                        await self._ensure_rule(table, chain, rule)
                    return
                except errdefs.Internal:
                    # a ctrd without the lock (an older one) may have removed shared chains midway
                    if attempt == ATTEMPTS:
                        raise

    async def _rules(self, table: str, chain: str) -> list[list[str]] | None:
        """The rules of a chain as `iptables -S` argument lists, None if the chain is missing."""
        rc, out = await self._ipt(table, "-S", chain)
        if rc != 0:
            return None
        return [shlex.split(line)[2:] for line in out.splitlines() if line.startswith("-A ")]

    async def _drop_shared_rules_of(self, bridge: str) -> None:
        """Rules an older ctrd put for `bridge` straight into the shared chains: this daemon's
        chains replace them (a bridge belongs to one daemon)."""
        for table, chain, _ in SHARED:
            for rule in await self._rules(table, chain) or []:
                if names_interface(rule, bridge):
                    await self._ipt(table, "-D", chain, *rule)

    async def remove_network(self, bridge: str) -> None:
        """Delete every rule in this daemon's chains that names `bridge` (idempotent), and any an
        older ctrd left for it in the shared chains."""
        async with self._locked():
            await self._drop_shared_rules_of(bridge)
            for table, chain, _ in self.own.all():
                for rule in await self._rules(table, chain) or []:
                    if names_interface(rule, bridge):
                        await self._ipt(table, "-D", chain, *rule)  # gone already is fine

    async def remove_chains_if_unused(self) -> bool:
        """Remove this daemon's chains when none of its networks has a rule left in them, then the
        shared chains and hooks when no daemon's jump is left in those. True when all went."""
        async with self._locked():
            for table, chain, _ in self.own.all():
                if await self._rules(table, chain):
                    return False
            await self._drop_own()
            return await self._drop_shared_if_unused()

    async def remove_all(self) -> bool:
        """Remove every rule and chain of this daemon (its networks' too), then the shared ones
        when unused: `ctrd --cleanup` of a host, and the tests' clean-up."""
        async with self._locked():
            await self._drop_own()
            return await self._drop_shared_if_unused()

    async def _drop_own(self) -> None:
        for table, chain, shared in self.own.all():
            while (await self._ipt(table, "-D", shared, "-j", chain))[0] == 0:
                pass
            await self._ipt(table, "-F", chain)
            await self._ipt(table, "-X", chain)

    async def _drop_shared_if_unused(self) -> bool:
        for table, chain, _ in SHARED:
            rules = await self._rules(table, chain)
            if rules and any(r != list(_ISOLATION_JUMP) for r in rules):
                return False
        for table, chain, hook in reversed(SHARED):
            if hook:
                while (await self._ipt(table, "-D", hook, "-j", chain))[0] == 0:
                    pass  # a duplicate from two daemons starting at once goes too
        for table, chain, _ in reversed(SHARED):
            await self._ipt(table, "-F", chain)
        for table, chain, _ in reversed(SHARED):
            await self._ipt(table, "-X", chain)
        return True
