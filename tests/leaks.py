"""What a test run must not leave behind, read from the kernel's own views."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Snapshot:
    mounts: frozenset[str]
    veths: frozenset[str]
    cgroups: frozenset[str]
    shims: frozenset[int]
    netns_files: frozenset[str]
    firewall: frozenset[str]
    runtime_dirs: frozenset[str]


BASELINE = pytest.StashKey[Snapshot]()


def _mounts() -> frozenset[str]:
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            target = parts[4]
            fstype = parts[parts.index("-") + 1]
            if fstype in ("overlay", "nsfs", "proc", "tmpfs", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2") or "ctrd" in target:
                out.add(f"{fstype} on {target}")
    return frozenset(out)


def _veths() -> frozenset[str]:
    out = set()
    net = Path("/sys/class/net")
    for dev in net.iterdir() if net.exists() else ():
        try:
            kind = (dev / "uevent").read_text()
        except OSError:
            continue
        if (dev / "bridge").exists() or "DEVTYPE=bridge" in kind:
            if dev.name.startswith(("ctrd", "ct")):
                out.add(f"bridge {dev.name}")
        elif (dev / "iflink").exists() and dev.name.startswith("veth"):
            out.add(f"veth {dev.name}")
    return frozenset(out)


def _cgroups() -> frozenset[str]:
    """Container cgroups: any directory below a `ctrd*` directory of a controller (v1) or of the
    unified hierarchy (v2). Empty `ctrd*` parents themselves are shared and not counted."""
    out = set()
    roots = [CGROUP_ROOT, *(p for p in CGROUP_ROOT.iterdir() if p.is_dir())] if CGROUP_ROOT.exists() else []
    for ctrl in roots:
        try:
            parents = [d for d in ctrl.iterdir() if d.is_dir() and d.name.startswith("ctrd")]
        except OSError:
            continue
        for parent in parents:
            for dirpath, dirnames, _ in os.walk(parent):
                out.update(os.path.join(dirpath, d) for d in dirnames)
    return frozenset(out)


def _shims() -> frozenset[int]:
    pids = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            comm = (d / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("ctrd-shim") or comm == "ctrd-dns":  # shims and the resolver outlive ctrd
            pids.add(int(d.name))
    return frozenset(pids)


def _netns_files() -> frozenset[str]:
    out = set()
    for base in (Path("/run/netns"),):
        if base.exists():
            out.update(str(p) for p in base.iterdir())
    return frozenset(out)


def _firewall() -> frozenset[str]:
    """ctrd's iptables chains and every rule in or jumping to them (`iptables-save` lines with
    CTRD in them), in the host's network namespace; nothing when iptables is not installed."""
    try:
        out = subprocess.run(["iptables-save"], capture_output=True, text=True, timeout=30).stdout
    except FileNotFoundError:
        return frozenset()
    return frozenset(ln for ln in out.splitlines() if "CTRD" in ln)


def _runtime_dirs() -> frozenset[str]:
    """containerd-shim-runc-v2's runc state, one directory per containerd namespace."""
    try:
        return frozenset(str(p) for p in Path("/run/containerd/runc").iterdir())
    except OSError:
        return frozenset()


def snapshot() -> Snapshot:
    return Snapshot(_mounts(), _veths(), _cgroups(), _shims(), _netns_files(), _firewall(), _runtime_dirs())


def diff(before: Snapshot, after_fn: Snapshot, settle: float = 0.0) -> list[str]:
    """New objects in `after` that were not in `before`; re-read until `settle` seconds pass."""
    deadline = time.monotonic() + settle
    after = after_fn
    while True:
        found = (
            [f"mount: {m}" for m in sorted(after.mounts - before.mounts)]
            + [f"link: {v}" for v in sorted(after.veths - before.veths)]
            + [f"cgroup: {c}" for c in sorted(after.cgroups - before.cgroups)]
            + [f"shim process: pid {p}" for p in sorted(after.shims - before.shims)]
            + [f"netns file: {n}" for n in sorted(after.netns_files - before.netns_files)]
            + [f"iptables: {r}" for r in sorted(after.firewall - before.firewall)]
            + [f"runtime state dir: {d}" for d in sorted(after.runtime_dirs - before.runtime_dirs)]
        )
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.25)
        after = snapshot()


def unmount_under(path: Path) -> list[str]:
    """Last-resort cleanup for a test's temp root: lazily unmount anything still mounted below it.

    Returns what it had to unmount, so that the fixture can fail the test that leaked it."""
    prefix = str(path.resolve()) + "/"
    targets = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            target = line.split()[4]
            if target.startswith(prefix):
                targets.append(target)
    for target in sorted(targets, key=len, reverse=True):
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)
    return targets
