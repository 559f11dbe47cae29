"""cgroups v1 and v2 behind one interface (`Cgroup`).

v1 (this build machine, hybrid): one directory per controller, <mnt>/<controller>/<cgroupsPath>.
v2: one directory, <unified>/<cgroupsPath>; limits only for controllers the parent delegates.
Only the leaf directory is created and removed: parents like /ctrd are shared between containers.
A leaf that already exists means another container owns the id (ContainerExists).
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from runtime.errors import CgroupError, ContainerExists
from runtime.spec import Resources

CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("freezer", "memory", "cpu", "cpuacct", "pids", "devices")


@dataclass(frozen=True, slots=True)
class Stats:
    memory_usage: int = 0
    memory_limit: int = 0
    cpu_usage_ns: int = 0
    pids_current: int = 0
    pids_limit: int = 0  # 0: no limit
    oom_kills: int = 0


class Cgroup(Protocol):
    kind: str  # "v1" | "v2"
    paths: dict[str, str]  # controller (or "" for v2) -> leaf directory

    def create(self, resources: Resources) -> None: ...
    def procs_files(self) -> list[str]: ...
    def add(self, pid: int) -> None: ...
    def freeze(self) -> None: ...
    def thaw(self) -> None: ...
    def frozen(self) -> bool: ...
    def pids(self) -> list[int]: ...
    def stats(self) -> Stats: ...
    def kill_all(self, sig: int) -> None: ...
    def destroy(self) -> None: ...
    def exists(self) -> bool: ...


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise CgroupError(f"cgroup: write {value!r} to {path}: {exc.strerror}") from exc


def _int(path: str, default: int = 0) -> int:
    try:
        text = _read(path).strip()
    except OSError:
        return default
    if text == "max":
        return 0
    try:
        return int(text)
    except ValueError:
        return default


def _procs(directory: str) -> list[int]:
    try:
        return [int(x) for x in _read(os.path.join(directory, "cgroup.procs")).split()]
    except OSError:
        return []


def _rmdir(path: str, deadline: float) -> None:
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            # EBUSY: exiting tasks are still being torn down; they go within milliseconds.
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(f"cgroup: remove {path}: {exc.strerror}") from exc
            time.sleep(0.005)


def _mkleaf(leaf: str) -> None:
    os.makedirs(os.path.dirname(leaf), exist_ok=True)
    try:
        os.mkdir(leaf)
    except FileExistsError:
        raise ContainerExists(f"cgroup {leaf} already exists")
    except OSError as exc:
        raise CgroupError(f"cgroup: create {leaf}: {exc.strerror}") from exc


def _wait_empty(dirs: Iterable[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for d in dirs:
        while _procs(d) and time.monotonic() < deadline:
            time.sleep(0.002)


_V1_MOUNTS: dict[str, str] | None = None


def v1_mounts() -> dict[str, str]:
    """controller -> mount point of its v1 hierarchy (read once per process)."""
    global _V1_MOUNTS
    if _V1_MOUNTS is None:
        found: dict[str, str] = {}
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields = right.split()
                if len(fields) < 3 or fields[0] != "cgroup":
                    continue
                for opt in fields[2].split(","):
                    if opt in V1_CONTROLLERS:
                        found.setdefault(opt, left.split()[4])
        _V1_MOUNTS = found
    return _V1_MOUNTS


class V1Cgroup:
    kind = "v1"

    def __init__(self, cgroups_path: str, mounts: dict[str, str] | None = None) -> None:
        mounts = v1_mounts() if mounts is None else mounts
        rel = "/" + cgroups_path.strip("/")
        self.paths = {ctrl: mnt + rel for ctrl, mnt in mounts.items()}
        # cpu and cpuacct may share one hierarchy ("cpu,cpuacct"): create each directory once.
        self._dirs = list(dict.fromkeys(self.paths.values()))

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._dirs)

    def create(self, resources: Resources) -> None:
        made: list[str] = []
        try:
            for d in self._dirs:
                _mkleaf(d)
                made.append(d)
            self._apply(resources)
        except BaseException:
            for d in reversed(made):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            raise

    def _apply(self, r: Resources) -> None:
        p = self.paths
        if "memory" in p:
            if r.memory_reservation is not None:
                _write(f"{p['memory']}/memory.soft_limit_in_bytes", str(r.memory_reservation))
            if r.memory_limit is not None:
                _write(f"{p['memory']}/memory.limit_in_bytes", str(r.memory_limit))
            if r.memory_swap is not None and os.path.exists(f"{p['memory']}/memory.memsw.limit_in_bytes"):
                _write(f"{p['memory']}/memory.memsw.limit_in_bytes", str(r.memory_swap))
        elif r.memory_limit is not None:
            raise CgroupError("cgroup: memory controller is not mounted")
        if "cpu" in p:
            if r.cpu_shares is not None:
                _write(f"{p['cpu']}/cpu.shares", str(r.cpu_shares))
            if r.cpu_period is not None:
                _write(f"{p['cpu']}/cpu.cfs_period_us", str(r.cpu_period))
            if r.cpu_quota is not None:
                _write(f"{p['cpu']}/cpu.cfs_quota_us", str(r.cpu_quota))
        if "pids" in p and r.pids_limit is not None:
            _write(f"{p['pids']}/pids.max", "max" if r.pids_limit < 0 else str(r.pids_limit))
        if "devices" in p and r.devices:
            for rule in r.devices:
                major = "*" if rule.major < 0 else str(rule.major)
                minor = "*" if rule.minor < 0 else str(rule.minor)
                text = "a" if rule.type == "a" and rule.major < 0 else f"{rule.type} {major}:{minor} {rule.access}"
                _write(f"{p['devices']}/devices.{'allow' if rule.allow else 'deny'}", text)

    def procs_files(self) -> list[str]:
        return [f"{d}/cgroup.procs" for d in self._dirs]

    def add(self, pid: int) -> None:
        for f in self.procs_files():
            _write(f, str(pid))

    def freeze(self) -> None:
        f = self._freezer("freezer.state")
        deadline = time.monotonic() + 5
        while True:
            _write(f, "FROZEN")
            if _read(f).strip() == "FROZEN":
                return
            if time.monotonic() > deadline:
                _write(f, "THAWED")
                raise CgroupError(f"cgroup: {f} did not reach FROZEN")
            time.sleep(0.001)

    def thaw(self) -> None:
        _write(self._freezer("freezer.state"), "THAWED")

    def frozen(self) -> bool:
        try:
            return _read(self._freezer("freezer.state")).strip() != "THAWED"
        except OSError:
            return False

    def _freezer(self, name: str) -> str:
        if "freezer" not in self.paths:
            raise CgroupError("cgroup: freezer controller is not mounted")
        return f"{self.paths['freezer']}/{name}"

    def _main_dir(self) -> str:
        for ctrl in ("pids", "freezer", "memory"):
            if ctrl in self.paths:
                return self.paths[ctrl]
        return self._dirs[0]

    def pids(self) -> list[int]:
        return _procs(self._main_dir())

    def stats(self) -> Stats:
        p = self.paths
        mem = p.get("memory", "")
        oom = 0
        try:
            for line in _read(f"{mem}/memory.oom_control").splitlines():
                if line.startswith("oom_kill "):
                    oom = int(line.split()[1])
        except OSError:
            pass
        limit = _int(f"{mem}/memory.limit_in_bytes")
        return Stats(
            memory_usage=_int(f"{mem}/memory.usage_in_bytes"),
            memory_limit=0 if limit >= 2**62 else limit,
            cpu_usage_ns=_int(f"{p.get('cpuacct', '')}/cpuacct.usage"),
            pids_current=_int(f"{p.get('pids', '')}/pids.current"),
            pids_limit=_int(f"{p.get('pids', '')}/pids.max"),
            oom_kills=oom,
        )

    def kill_all(self, sig: int) -> None:
        # Freeze first so that a fork bomb cannot outrun the loop (runc does the same on v1).
        can_freeze = "freezer" in self.paths and os.path.isdir(self.paths["freezer"])
        if can_freeze:
            self.freeze()
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if can_freeze:
                self.thaw()

    def destroy(self) -> None:
        if self.pids():
            self.kill_all(signal.SIGKILL)
            _wait_empty(self._dirs, 5.0)
        deadline = time.monotonic() + 5
        for d in self._dirs:
            _rmdir(d, deadline)


class V2Cgroup:
    kind = "v2"

    def __init__(self, cgroups_path: str, root: str = CGROUP_ROOT) -> None:
        self.root = root
        self.dir = root + "/" + cgroups_path.strip("/")
        self.paths = {"": self.dir}

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def create(self, resources: Resources) -> None:
        self._delegate(resources)
        _mkleaf(self.dir)
        try:
            self._apply(resources)
        except BaseException:
            try:
                os.rmdir(self.dir)
            except OSError:
                pass
            raise

    def _wanted(self, r: Resources) -> list[str]:
        want = []
        if r.memory_limit is not None or r.memory_swap is not None or r.memory_reservation is not None:
            want.append("memory")
        if r.cpu_shares is not None or r.cpu_quota is not None:
            want.append("cpu")
        if r.pids_limit is not None:
            want.append("pids")
        return want

    def _delegate(self, r: Resources) -> None:
        """Enable the needed controllers in every ancestor's subtree_control."""
        want = self._wanted(r)
        if not want:
            return
        rel = os.path.relpath(os.path.dirname(self.dir), self.root)
        parts = [] if rel == "." else rel.split("/")
        cur = self.root
        for part in [None, *parts]:
            if part is not None:
                cur = f"{cur}/{part}"
                os.makedirs(cur, exist_ok=True)
            available = _read(f"{cur}/cgroup.controllers").split()
            for ctrl in want:
                if ctrl not in available:
                    raise CgroupError(f"cgroup: controller {ctrl} is not available in {cur}")
            _write(f"{cur}/cgroup.subtree_control", " ".join("+" + c for c in want))

    def _apply(self, r: Resources) -> None:
        d = self.dir
        if r.memory_limit is not None:
            _write(f"{d}/memory.max", "max" if r.memory_limit < 0 else str(r.memory_limit))
        if r.memory_swap is not None and r.memory_limit is not None and os.path.exists(f"{d}/memory.swap.max"):
            swap = "max" if r.memory_swap < 0 else str(max(r.memory_swap - r.memory_limit, 0))
            _write(f"{d}/memory.swap.max", swap)
        if r.memory_reservation is not None:
            _write(f"{d}/memory.low", str(r.memory_reservation))
        if r.cpu_shares is not None:
            _write(f"{d}/cpu.weight", str(1 + ((r.cpu_shares - 2) * 9999) // 262142))
        if r.cpu_quota is not None:
            quota = "max" if r.cpu_quota < 0 else str(r.cpu_quota)
            _write(f"{d}/cpu.max", f"{quota} {r.cpu_period or 100000}")
        if r.pids_limit is not None:
            _write(f"{d}/pids.max", "max" if r.pids_limit < 0 else str(r.pids_limit))

    def procs_files(self) -> list[str]:
        return [f"{self.dir}/cgroup.procs"]

    def add(self, pid: int) -> None:
        _write(f"{self.dir}/cgroup.procs", str(pid))

    def freeze(self) -> None:
        _write(f"{self.dir}/cgroup.freeze", "1")
        deadline = time.monotonic() + 5
        while not self.frozen():
            if time.monotonic() > deadline:
                _write(f"{self.dir}/cgroup.freeze", "0")
                raise CgroupError(f"cgroup: {self.dir} did not freeze")
            time.sleep(0.001)

    def thaw(self) -> None:
        _write(f"{self.dir}/cgroup.freeze", "0")

    def frozen(self) -> bool:
        try:
            return "frozen 1" in _read(f"{self.dir}/cgroup.events")
        except OSError:
            return False

    def pids(self) -> list[int]:
        return _procs(self.dir)

    def stats(self) -> Stats:
        d = self.dir
        usage = 0
        try:
            for line in _read(f"{d}/cpu.stat").splitlines():
                if line.startswith("usage_usec "):
                    usage = int(line.split()[1]) * 1000
        except OSError:
            pass
        oom = 0
        try:
            for line in _read(f"{d}/memory.events").splitlines():
                if line.startswith("oom_kill "):
                    oom = int(line.split()[1])
        except OSError:
            pass
        return Stats(
            memory_usage=_int(f"{d}/memory.current"),
            memory_limit=_int(f"{d}/memory.max"),
            cpu_usage_ns=usage,
            pids_current=_int(f"{d}/pids.current"),
            pids_limit=_int(f"{d}/pids.max"),
            oom_kills=oom,
        )

    def kill_all(self, sig: int) -> None:
        if sig == signal.SIGKILL and os.path.exists(f"{self.dir}/cgroup.kill"):
            _write(f"{self.dir}/cgroup.kill", "1")
            return
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def destroy(self) -> None:
        if not self.exists():
            return
        if self.pids():
            self.kill_all(signal.SIGKILL)
            _wait_empty([self.dir], 5.0)
        _rmdir(self.dir, time.monotonic() + 5)


def for_path(cgroups_path: str) -> Cgroup:
    """The right implementation for this host: pure v2 when the root is cgroup2, else v1."""
    if os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers"):
        return V2Cgroup(cgroups_path)
    return V1Cgroup(cgroups_path)


def from_state(kind: str, cgroups_path: str, root: str = "") -> Cgroup:
    if kind == "v2":
        return V2Cgroup(cgroups_path, root or CGROUP_ROOT)
    return V1Cgroup(cgroups_path)
