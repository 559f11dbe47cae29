"""Shared pieces of the fault suite (tests/*/test_fault_*.py).

`FaultDaemon` is the daemon fixture's `DaemonProc` plus what fault tests need: start with
`CTRD_FAULTS` armed (daemon/faults.py kills ctrd at a named step), wait for that death, count the
daemon's fds and RSS, and check that the state on disk matches what the API reports.

The `fault_ctrd` fixture is a factory: `d = fault_ctrd("--live-restore", faults="x")` starts a
daemon with its own root, exec-root, socket, bridge, subnet and cgroup parent. At teardown every
container is force-removed, then the daemon's own objects are checked — ctrd fds back near their
start-up count, no veth on its bridge, no mount under its roots, no netns file, no cgroup, no shim,
no socket — and the daemon fixture's teardown (SIGTERM, leftovers, host cleanup) runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ctrd.errdefs import CtrdError
from tests.daemon_fixtures import DaemonProc, new_daemon, teardown

FD_SLACK = 12  # grpc and the launcher may open a few descriptors lazily
ALIVE = ("running", "paused", "restarting")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pid_alive(pid: int) -> bool:
    """True for a live, non-zombie process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@dataclasses.dataclass
class FaultDaemon(DaemonProc):
    faults: str = ""
    fd_baseline: int = 0

    def start(self) -> None:
        old = os.environ.get("CTRD_FAULTS")
        if self.faults:
            os.environ["CTRD_FAULTS"] = self.faults
        else:
            os.environ.pop("CTRD_FAULTS", None)
        try:
            super().start()
        finally:
            if old is None:
                os.environ.pop("CTRD_FAULTS", None)
            else:
                os.environ["CTRD_FAULTS"] = old
        self.fd_baseline = fd_count(self.pid)

    @property
    def pid(self) -> int:
        assert self.proc is not None, "daemon not running"
        return self.proc.pid

    def wait_killed(self, timeout: float = 20.0) -> int:
        """Wait for the injected SIGKILL; returns the exit status (-9)."""
        assert self.proc is not None
        rc = self.proc.wait(timeout)
        if self.client is not None:
            self.client.close()
            self.client = None
        self.proc = None
        return rc

    def restart_clean(self) -> None:
        """Start again with no fault armed (the process must be gone already)."""
        assert self.proc is None
        self.faults = ""
        self.start()

    # what the daemon owns ---------------------------------------------------------------

    def veths(self) -> list[str]:
        brif = Path("/sys/class/net") / self.bridge / "brif"
        return sorted(p.name for p in brif.iterdir()) if brif.exists() else []

    def netns_files(self) -> list[str]:
        d = self.exec_root / "netns"
        return sorted(p.name for p in d.iterdir()) if d.exists() else []

    def shim_dirs(self) -> list[str]:
        d = self.exec_root / "shims"
        return sorted(p.name for p in d.iterdir()) if d.exists() else []

    def record_ids(self) -> list[str]:
        """The record directories (a removed one, renamed `.rm-<id>` for deletion after the
        answer, is no longer a record; a start-up deletes any a crash left)."""
        d = self.root / "containers"
        return sorted(p.name for p in d.iterdir() if not p.name.startswith(".rm-")) if d.exists() else []

    def container_layer_dirs(self) -> list[str]:
        """overlay2 entries that belong to containers (<id> and <id>-init), not to images."""
        d = self.root / "overlay2"
        names = {p.name for p in d.iterdir()} if d.exists() else set()
        return sorted(n for n in names if n.endswith("-init") or f"{n}-init" in names)

    def parse_metadata(self) -> dict[str, dict[str, Any]]:
        """Every record's config.v2.json and hostconfig.json must parse (atomic writes)."""
        out = {}
        for cid in self.record_ids():
            cdir = self.root / "containers" / cid
            cfg = cdir / "config.v2.json"
            if not cfg.exists():
                continue  # a create that crashed before its record: recovery removes the dir
            out[cid] = json.loads(cfg.read_text())
            host = cdir / "hostconfig.json"
            if host.exists():
                json.loads(host.read_text())
        return out


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def shim_of(d: DaemonProc, pid: int) -> int:
    """The shim of the container whose init is `pid`: its parent, or its grandparent while the
    shim's create helper has not exited yet (the shim answers Start as soon as the helper reports
    the container started, shimd.backends.forked; the init is reparented to the shim, its
    subreaper, when the helper exits). The ancestry is read again if the helper exits meanwhile."""
    shims = d.shim_pids()
    for _ in range(50):
        try:
            parent = _ppid(pid)
            for candidate in (parent, _ppid(parent)):
                if candidate in shims:
                    return candidate
        except OSError:
            continue  # the helper exited between the two reads: the init's parent is the shim now
        break
    raise AssertionError(f"pid {pid}: no shim among its parent and grandparent (shims {shims})")


def make_daemon(base: Path, *extra: str, faults: str = "") -> FaultDaemon:
    d = new_daemon(base, *extra)
    fd = FaultDaemon(**{f.name: getattr(d, f.name) for f in dataclasses.fields(d)}, faults=faults)
    fd.start()
    return fd


def consistency(d: FaultDaemon) -> list[str]:
    """What disagrees between the API's view and the machine, for a daemon that is up."""
    problems: list[str] = []
    infos = {c.id: d.c.inspect(c.id) for c in d.c.list(all_=True)}
    alive = {cid for cid, i in infos.items() if i["State"]["Status"] in ("running", "paused")}
    for cid, info in infos.items():
        st = info["State"]
        if st["Status"] in ("running", "paused"):
            if not pid_alive(st["Pid"]):
                problems.append(f"{cid[:12]} {st['Status']} but pid {st['Pid']} is gone")
        elif st["Status"] in ("created", "exited"):
            if st["Pid"]:
                problems.append(f"{cid[:12]} {st['Status']} with pid {st['Pid']}")
        elif st["Status"] != "restarting":
            problems.append(f"{cid[:12]} in state {st['Status']}")
    mounted = [m for m in d.mounts() if m.endswith("/merged")]
    if len(mounted) > len(alive):
        problems.append(f"{len(mounted)} rootfs mounts for {len(alive)} live containers")
    if len(d.netns_files()) > len(alive):
        problems.append(f"netns files {d.netns_files()} for {len(alive)} live containers")
    if len(d.shim_pids()) > len(alive):
        problems.append(f"{len(d.shim_pids())} shims for {len(alive)} live containers")
    if len(d.veths()) > len(alive):
        problems.append(f"veths {d.veths()} for {len(alive)} live containers")
    stray = sorted(set(d.shim_dirs()) - alive)
    if stray:
        problems.append(f"shim state dirs of dead containers: {stray}")
    records = set(d.parse_metadata())
    if set(infos) != records:
        problems.append(f"API lists {sorted(infos)} but records are {sorted(records)}")
    layer_owners = {n.removesuffix("-init") for n in d.container_layer_dirs()}
    if layer_owners - records:
        problems.append(f"orphaned container layers: {sorted(layer_owners - records)}")
    return problems


def settle(check: Callable[[], list[str]], timeout: float = 8.0) -> list[str]:
    deadline = time.monotonic() + timeout
    found = check()
    while found and time.monotonic() < deadline:
        time.sleep(0.1)
        found = check()
    return found


def remove_all(d: FaultDaemon) -> None:
    for c in d.c.list(all_=True):
        try:
            d.c.remove(c.id, force=True)
        except CtrdError:
            pass


def own_leaks(d: FaultDaemon) -> list[str]:
    """With no container left: nothing of this daemon may remain on the machine."""
    found = [f"veth {v}" for v in d.veths()] + [f"shim dir {s}" for s in d.shim_dirs()]
    found += [f"leftover {x}" for x in d.leftovers()]
    if d.proc is not None:
        n = fd_count(d.pid)
        if n > d.fd_baseline + FD_SLACK:
            found.append(f"ctrd holds {n} fds, {d.fd_baseline} at start-up")
    return found


def kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def fault_ctrd(short_tmp: Path) -> Iterator[Callable[..., FaultDaemon]]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    made: list[FaultDaemon] = []

    def factory(*extra: str, faults: str = "") -> FaultDaemon:
        base = short_tmp / f"d{len(made)}"
        base.mkdir()
        d = make_daemon(base, *extra, faults=faults)
        made.append(d)
        return d

    yield factory
    problems: list[str] = []
    for d in made:
        print(f"--- {d.base.name}: ctrd log (shown by pytest when the test failed) ---\n{d.log()}")
        try:
            if d.proc is None and (d.shim_pids() or d.record_ids()):
                d.restart_clean()  # a test that failed with its daemon down: recover, then clean
            if d.proc is not None:
                remove_all(d)
                problems += [f"{d.base.name}: {p}" for p in settle(lambda d=d: own_leaks(d))]  # type: ignore[misc]
        except (CtrdError, RuntimeError) as exc:
            problems.append(f"{d.base.name}: cleanup: {exc}")
        problems += [f"{d.base.name}: {p}" for p in teardown(d)]
        if (d.exec_root / "ctrd.sock").exists():
            problems.append(f"{d.base.name}: socket {d.exec_root / 'ctrd.sock'} left after shutdown")
    if problems:
        pytest.fail("fault daemon left things behind: " + "; ".join(problems))
