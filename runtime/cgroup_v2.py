"""cgroup v2: one directory, <unified>/<cgroupsPath>; limits only for delegated controllers."""

from __future__ import annotations

import os
import time

from runtime import cgroup_extra, sigs
from runtime import cgroup_v2_devices as devices_v2
from runtime import cgroup_v2_io as io_v2
from runtime import cgroupfs as fs
from runtime.cgroupfs import Stats
from runtime.errors import CgroupError

TYPE_CHECKING = False  # Resources is an annotation only: `state`/`kill` need no spec parser
if TYPE_CHECKING:
    from runtime.spec_resources import Resources

CGROUP_ROOT = "/sys/fs/cgroup"


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
        fs.mkleaf(self.dir)
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
        if r.cpu_cpus is not None or r.cpu_mems is not None:
            want.append("cpuset")
        if r.blkio:
            want.append("io")
        return want + [c for c in cgroup_extra.wanted_v2(r.extra) if c not in want]

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
            available = fs.read(f"{cur}/cgroup.controllers").split()
            for ctrl in want:
                if ctrl not in available:
                    raise CgroupError(f"cgroup: controller {ctrl} is not available in {cur}")
            fs.write(f"{cur}/cgroup.subtree_control", " ".join("+" + c for c in want))

    def update(self, resources: Resources) -> None:
        self._apply(resources)

    def _apply(self, r: Resources) -> None:
        d = self.dir
        if r.cpu_cpus is not None:
            fs.write(f"{d}/cpuset.cpus", r.cpu_cpus)
        if r.cpu_mems is not None:
            fs.write(f"{d}/cpuset.mems", r.cpu_mems)
        if r.blkio:
            io_v2.apply(d, r.blkio)
        if r.memory_limit is not None:
            fs.write(f"{d}/memory.max", "max" if r.memory_limit < 0 else str(r.memory_limit))
        if r.memory_swap is not None and r.memory_limit is not None and os.path.exists(f"{d}/memory.swap.max"):
            swap = "max" if r.memory_swap < 0 else str(max(r.memory_swap - r.memory_limit, 0))
            fs.write(f"{d}/memory.swap.max", swap)
        if r.memory_reservation is not None:
            fs.write(f"{d}/memory.low", str(r.memory_reservation))
        if r.cpu_shares is not None:
            fs.write(f"{d}/cpu.weight", str(1 + ((r.cpu_shares - 2) * 9999) // 262142))
        if r.cpu_quota is not None:
            quota = "max" if r.cpu_quota < 0 else str(r.cpu_quota)
            fs.write(f"{d}/cpu.max", f"{quota} {r.cpu_period or 100000}")
        if r.pids_limit is not None:
            fs.write(f"{d}/pids.max", "max" if r.pids_limit < 0 else str(r.pids_limit))
        if r.extra:
            cgroup_extra.apply_v2(d, r.extra)
        if r.devices:
            devices_v2.attach(d, r.devices)

    def procs_files(self) -> list[str]:
        return [f"{self.dir}/cgroup.procs"]

    def add(self, pid: int) -> None:
        fs.write(f"{self.dir}/cgroup.procs", str(pid))

    def self_placement(self) -> tuple[int, tuple[str, ...]]:
        """Not here: the parent writes the pid (runtime.create; measured on v1 hierarchies only)."""
        return -1, ()

    def drop_ahead(self) -> None:
        """Nothing is made ahead of create() here."""

    def freeze(self) -> None:
        fs.write(f"{self.dir}/cgroup.freeze", "1")
        deadline = time.monotonic() + 5
        while not self.frozen():
            if time.monotonic() > deadline:
                fs.write(f"{self.dir}/cgroup.freeze", "0")
                raise CgroupError(f"cgroup: {self.dir} did not freeze")
            time.sleep(0.001)

    def thaw(self) -> None:
        fs.write(f"{self.dir}/cgroup.freeze", "0")

    def frozen(self) -> bool:
        try:
            return "frozen 1" in fs.read(f"{self.dir}/cgroup.events")
        except OSError:
            return False

    def pids(self) -> list[int]:
        return fs.procs(self.dir)

    def stats(self) -> Stats:
        d = self.dir
        usage = 0
        try:
            for line in fs.read(f"{d}/cpu.stat").splitlines():
                if line.startswith("usage_usec "):
                    usage = int(line.split()[1]) * 1000
        except OSError:
            pass
        oom = 0
        try:
            for line in fs.read(f"{d}/memory.events").splitlines():
                if line.startswith("oom_kill "):
                    oom = int(line.split()[1])
        except OSError:
            pass
        return Stats(
            memory_usage=fs.read_int(f"{d}/memory.current"),
            memory_limit=fs.read_int(f"{d}/memory.max"),
            cpu_usage_ns=usage,
            pids_current=fs.read_int(f"{d}/pids.current"),
            pids_limit=fs.read_int(f"{d}/pids.max"),
            oom_kills=oom,
        )

    def kill_all(self, sig: int) -> None:
        if sig == sigs.SIGKILL and os.path.exists(f"{self.dir}/cgroup.kill"):
            fs.write(f"{self.dir}/cgroup.kill", "1")
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
            self.kill_all(sigs.SIGKILL)
            fs.wait_empty([self.dir], 5.0)
        fs.rmdir_wait(self.dir, time.monotonic() + 5)
