"""cgroup v1: one directory per controller, <mnt>/<controller>/<cgroupsPath>."""

from __future__ import annotations

import os
import time

from runtime import cgroup_extra, sigs
from runtime import cgroup_v1_more as more
from runtime import cgroupfs as fs
from runtime.cgroup_extra import V1_EXTRA_CONTROLLERS
from runtime.cgroupfs import Stats
from runtime.errors import CgroupError

TYPE_CHECKING = False  # Resources is an annotation only: `state`/`kill` need no spec parser
if TYPE_CHECKING:
    from runtime.spec_resources import Resources

# "systemd" is the named hierarchy name=systemd, which runc joins too (systemd inside a container
# and docker's own tools look for it); it has no controller files.
UNIFIED = "unified"  # the key of a hybrid host's cgroup2 hierarchy in V1Cgroup.paths
V1_CONTROLLERS = ("freezer", "memory", "cpu", "cpuacct", "pids", "devices", "cpuset", "blkio", "systemd",
                  *V1_EXTRA_CONTROLLERS)

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
                if len(fields) >= 3 and fields[0] == "cgroup2":
                    # Hybrid hosts: runc puts the process in the unified hierarchy too
                    # (/proc/self/cgroup "0::/<path>"); it is not shown inside the container.
                    found.setdefault(UNIFIED, left.split()[4])
                if len(fields) < 3 or fields[0] != "cgroup":
                    continue
                for opt in fields[2].split(","):
                    opt = opt.removeprefix("name=")
                    if opt in V1_CONTROLLERS:
                        found.setdefault(opt, left.split()[4])
        _V1_MOUNTS = found
    return _V1_MOUNTS


class V1Cgroup:
    kind = "v1"

    def __init__(self, cgroups_path: str, mounts: dict[str, str] | None = None) -> None:
        mounts = v1_mounts() if mounts is None else mounts
        rel = "/" + cgroups_path.strip("/")
        self._mounts = mounts
        self.paths = {ctrl: mnt + rel for ctrl, mnt in mounts.items()}
        # cpu and cpuacct may share one hierarchy ("cpu,cpuacct"): create each directory once.
        self._dirs = list(dict.fromkeys(self.paths.values()))
        self._premade = ""  # the unified leaf, made ahead of create() by self_placement()

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._dirs)

    def self_placement(self) -> tuple[int, tuple[str, ...]]:
        """For a child that places itself (runtime.create): an open fd of the hybrid host's
        unified (cgroup2) leaf, made here ahead of create() for the child to be born in (-1
        without a unified hierarchy; destroy() removes it), and the `tasks` file of each v1
        hierarchy, to which a process with one thread writes "0" to move itself."""
        unified = self.paths.get(UNIFIED)
        files = tuple(f"{d}/tasks" for d in self._dirs if d != unified)
        if unified is None:
            return -1, files
        fs.mkleaf(unified)  # ContainerExists when it is there: nothing made, nothing to undo
        self._premade = unified
        try:
            return os.open(unified, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), files
        except OSError as exc:
            self.drop_ahead()
            raise CgroupError(f"cgroup: open {unified}: {exc.strerror}") from exc

    def drop_ahead(self) -> None:
        """Remove the leaf self_placement made (a create that failed before create())."""
        if self._premade:
            try:
                os.rmdir(self._premade)
            except OSError:
                pass
            self._premade = ""

    def create(self, resources: Resources) -> None:
        made: list[str] = []
        try:
            for d in self._dirs:
                if d == self._premade:
                    continue
                if d == self.paths.get("cpuset"):
                    more.cpuset_parents(self._mounts["cpuset"], d)
                fs.mkleaf(d)
                made.append(d)
                if d == self.paths.get("cpuset"):
                    more.inherit_cpuset(d)
            self._apply(resources)
        except BaseException:
            for d in reversed(made):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            raise

    def update(self, resources: Resources) -> None:
        self._apply(resources)

    def _apply(self, r: Resources) -> None:
        p = self.paths
        if "memory" in p:
            if r.memory_reservation is not None:
                fs.write(f"{p['memory']}/memory.soft_limit_in_bytes", str(r.memory_reservation))
            if r.memory_limit is not None:
                fs.write(f"{p['memory']}/memory.limit_in_bytes", str(r.memory_limit))
            if r.memory_swap is not None and os.path.exists(f"{p['memory']}/memory.memsw.limit_in_bytes"):
                fs.write(f"{p['memory']}/memory.memsw.limit_in_bytes", str(r.memory_swap))
        elif r.memory_limit is not None:
            raise CgroupError("cgroup: memory controller is not mounted")
        if "cpu" in p:
            if r.cpu_shares is not None:
                fs.write(f"{p['cpu']}/cpu.shares", str(r.cpu_shares))
            if r.cpu_period is not None:
                fs.write(f"{p['cpu']}/cpu.cfs_period_us", str(r.cpu_period))
            if r.cpu_quota is not None:
                fs.write(f"{p['cpu']}/cpu.cfs_quota_us", str(r.cpu_quota))
        if r.cpu_cpus is not None or r.cpu_mems is not None:
            if "cpuset" not in p:
                raise CgroupError("cgroup: linux.resources.cpu.cpus: the cpuset controller is not mounted")
            more.apply_cpuset(p["cpuset"], r.cpu_cpus, r.cpu_mems)
        if r.blkio:
            if "blkio" not in p:
                raise CgroupError("cgroup: linux.resources.blockIO: the blkio controller is not mounted")
            more.apply_blkio(p["blkio"], r.blkio)
        if "pids" in p and r.pids_limit is not None:
            fs.write(f"{p['pids']}/pids.max", "max" if r.pids_limit < 0 else str(r.pids_limit))
        if "devices" in p and r.devices:
            for rule in r.devices:
                major = "*" if rule.major < 0 else str(rule.major)
                minor = "*" if rule.minor < 0 else str(rule.minor)
                text = "a" if rule.type == "a" and rule.major < 0 else f"{rule.type} {major}:{minor} {rule.access}"
                fs.write(f"{p['devices']}/devices.{'allow' if rule.allow else 'deny'}", text)
        if r.extra:
            cgroup_extra.apply_v1(p, r.extra)

    def mount_sources(self) -> list[tuple[str, str]]:
        """(name under /sys/fs/cgroup, host directory) for the container's cgroup mount."""
        return [(k, v) for k, v in self.paths.items() if k != UNIFIED]

    def procs_files(self) -> list[str]:
        return [f"{d}/cgroup.procs" for d in self._dirs]

    def add(self, pid: int) -> None:
        for f in self.procs_files():
            fs.write(f, str(pid))

    def freeze(self) -> None:
        f = self._freezer("freezer.state")
        deadline = time.monotonic() + 5
        while True:
            fs.write(f, "FROZEN")
            if fs.read(f).strip() == "FROZEN":
                return
            if time.monotonic() > deadline:
                fs.write(f, "THAWED")
                raise CgroupError(f"cgroup: {f} did not reach FROZEN")
            time.sleep(0.001)

    def thaw(self) -> None:
        fs.write(self._freezer("freezer.state"), "THAWED")

    def frozen(self) -> bool:
        try:
            return fs.read(self._freezer("freezer.state")).strip() != "THAWED"
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
        return fs.procs(self._main_dir())

    def stats(self) -> Stats:
        p = self.paths
        mem = p.get("memory", "")
        oom = 0
        try:
            for line in fs.read(f"{mem}/memory.oom_control").splitlines():
                if line.startswith("oom_kill "):
                    oom = int(line.split()[1])
        except OSError:
            pass
        limit = fs.read_int(f"{mem}/memory.limit_in_bytes")
        return Stats(
            memory_usage=fs.read_int(f"{mem}/memory.usage_in_bytes"),
            memory_limit=0 if limit >= 2**62 else limit,
            cpu_usage_ns=fs.read_int(f"{p.get('cpuacct', '')}/cpuacct.usage"),
            pids_current=fs.read_int(f"{p.get('pids', '')}/pids.current"),
            pids_limit=fs.read_int(f"{p.get('pids', '')}/pids.max"),
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
            self.kill_all(sigs.SIGKILL)
            fs.wait_empty(self._dirs, 5.0)
        deadline = time.monotonic() + 5
        for d in self._dirs:
            fs.rmdir_wait(d, deadline)
