"""A container's statistics in the JSON shape `runc events` prints (runc 1.1's types.Stats),
read from its cgroup: cpu, cpuset, memory, pids, blkio; hugetlb, intel_rdt and the network
interfaces are empty as runc prints them on a host without those controllers.

Go's `omitempty` is kept where runc's struct tags have it: a zero or empty field is left out,
so the same container state gives the same keys as runc.
"""

from __future__ import annotations

import os
from typing import Any

from runtime import cgroupfs as fs

TYPE_CHECKING = False  # annotations only (runtime/cgroups.py)
if TYPE_CHECKING:
    from runtime.cgroups import Cgroup

_USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_BLKIO_V1 = (  # runc's fallback to the throttle files when the CFQ ones are absent or empty
    ("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes_recursive"),
    ("ioServicedRecursive", "blkio.throttle.io_serviced_recursive"),
)
_CPUSET_FLAGS = ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                 "memory_spread_slab", "memory_pressure", "sched_load_balance", "sched_relax_domain_level")


def stats(cg: Cgroup) -> dict[str, Any]:
    data = _v2(cg.paths[""]) if cg.kind == "v2" else _v1(cg.paths)
    data.update(hugetlb={}, intel_rdt={}, network_interfaces=None)
    return data


def _omit(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    for k in keys:
        if not obj.get(k):
            obj.pop(k, None)
    return obj


def _ints(path: str) -> list[int]:
    try:
        return [int(x) for x in fs.read(path).split()]
    except (OSError, ValueError):
        return []


def _kv(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in fs.read(path).splitlines():
            k, _, v = line.partition(" ")
            if v.strip().lstrip("-").isdigit():
                out[k] = int(v)
    except OSError:
        pass
    return out


def _cpu_list(text: str) -> list[int]:
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def _entry(d: str, prefix: str, with_usage: bool = True) -> dict[str, Any]:
    e = {"limit": fs.read_int(f"{d}/{prefix}limit_in_bytes"), "usage": fs.read_int(f"{d}/{prefix}usage_in_bytes"),
         "max": fs.read_int(f"{d}/{prefix}max_usage_in_bytes"), "failcnt": fs.read_int(f"{d}/{prefix}failcnt")}
    return _omit(e, "usage", "max") if with_usage else e


def _v1(p: dict[str, str]) -> dict[str, Any]:
    acct = p.get("cpuacct", "")
    ticks = _kv(f"{acct}/cpuacct.stat")
    usage = _omit({"total": fs.read_int(f"{acct}/cpuacct.usage"), "percpu": _ints(f"{acct}/cpuacct.usage_percpu"),
                   "percpu_kernel": _ints(f"{acct}/cpuacct.usage_percpu_sys"),
                   "percpu_user": _ints(f"{acct}/cpuacct.usage_percpu_user"),
                   "kernel": ticks.get("system", 0) * 1_000_000_000 // _USER_HZ,
                   "user": ticks.get("user", 0) * 1_000_000_000 // _USER_HZ},
                  "total", "percpu", "percpu_kernel", "percpu_user")
    st = _kv(f"{p.get('cpu', '')}/cpu.stat")
    throttling = _omit({"periods": st.get("nr_periods", 0), "throttledPeriods": st.get("nr_throttled", 0),
                        "throttledTime": st.get("throttled_time", 0)}, "periods", "throttledPeriods", "throttledTime")
    cs = p.get("cpuset", "")
    cpuset: dict[str, Any] = {}
    if cs:
        cpuset["cpus"] = _cpu_list(_read(f"{cs}/cpuset.cpus"))
        cpuset["cpu_exclusive"] = fs.read_int(f"{cs}/cpuset.cpu_exclusive")
        cpuset["mems"] = _cpu_list(_read(f"{cs}/cpuset.mems"))
        for flag in _CPUSET_FLAGS[1:]:
            cpuset[flag] = fs.read_int(f"{cs}/cpuset.{flag}")
        _omit(cpuset, "cpus", "mems")
    m = p.get("memory", "")
    raw = _kv(f"{m}/memory.stat")
    memory = _omit({"cache": raw.get("cache", 0), "usage": _entry(m, "memory."), "swap": _entry(m, "memory.memsw."),
                    "kernel": _entry(m, "memory.kmem."), "kernelTCP": _entry(m, "memory.kmem.tcp."), "raw": raw},
                   "cache", "raw")
    pid_dir = p.get("pids", "")
    pids = _omit({"current": fs.read_int(f"{pid_dir}/pids.current"), "limit": fs.read_int(f"{pid_dir}/pids.max")},
                 "current", "limit")
    blkio: dict[str, Any] = {}
    for key, name in _BLKIO_V1:
        entries = _blkio_entries(f"{p.get('blkio', '')}/{name}")
        if entries:
            blkio[key] = entries
    return {"cpu": {"usage": usage, "throttling": throttling}, "cpuset": cpuset, "memory": memory, "pids": pids,
            "blkio": blkio}


def _read(path: str) -> str:
    try:
        return fs.read(path)
    except OSError:
        return ""


def _blkio_entries(path: str) -> list[dict[str, Any]]:
    out = []
    for line in _read(path).splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue  # the "Total N" line
        major, minor = parts[0].split(":")
        out.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
    return out


def _v2(d: str) -> dict[str, Any]:
    st = _kv(f"{d}/cpu.stat")
    usage = _omit({"total": st.get("usage_usec", 0) * 1000, "kernel": st.get("system_usec", 0) * 1000,
                   "user": st.get("user_usec", 0) * 1000}, "total")
    throttling = _omit({"periods": st.get("nr_periods", 0), "throttledPeriods": st.get("nr_throttled", 0),
                        "throttledTime": st.get("throttled_usec", 0) * 1000},
                       "periods", "throttledPeriods", "throttledTime")
    raw = _kv(f"{d}/memory.stat")
    limit = fs.read_int(f"{d}/memory.max")
    memory = _omit({"cache": raw.get("file", 0),
                    "usage": _omit({"limit": limit, "usage": fs.read_int(f"{d}/memory.current"),
                                    "max": fs.read_int(f"{d}/memory.peak"), "failcnt": 0}, "usage", "max"),
                    "swap": _omit({"limit": fs.read_int(f"{d}/memory.swap.max"),
                                   "usage": fs.read_int(f"{d}/memory.swap.current"), "failcnt": 0}, "usage"),
                    "kernel": {"limit": 0, "failcnt": 0}, "kernelTCP": {"limit": 0, "failcnt": 0}, "raw": raw},
                   "cache", "raw")
    pids = _omit({"current": fs.read_int(f"{d}/pids.current"), "limit": fs.read_int(f"{d}/pids.max")},
                 "current", "limit")
    cpuset: dict[str, Any] = _omit({"cpus": _cpu_list(_read(f"{d}/cpuset.cpus.effective")),
                                    "mems": _cpu_list(_read(f"{d}/cpuset.mems.effective"))}, "cpus", "mems")
    return {"cpu": {"usage": usage, "throttling": throttling}, "cpuset": cpuset, "memory": memory, "pids": pids,
            "blkio": {}}
