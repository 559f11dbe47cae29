"""The machine a run was measured on (cpu model, cores, kernel, memory, date)."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown"


def mem_total_kb(meminfo: str) -> int:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def cgroup_layout() -> str:
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return "v2"
    if Path("/sys/fs/cgroup/unified").exists():
        return "v1 hybrid"
    return "v1"


def cpu_pressure_avg60() -> float | None:
    """% of the last minute some task waited for a CPU (PSI): how busy the machine was around a run."""
    try:
        for line in Path("/proc/pressure/cpu").read_text().splitlines():
            if line.startswith("some"):
                return float(dict(kv.split("=") for kv in line.split()[1:])["avg60"])
    except (OSError, KeyError, ValueError):
        return None
    return None


def describe_machine() -> dict[str, object]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    os_release = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            k, _, v = line.partition("=")
            os_release[k] = v.strip('"')
    except OSError:
        pass
    return {
        "cpu_model": cpu_model(cpuinfo),
        "cores": os.cpu_count() or 0,
        "mem_total_mb": mem_total_kb(meminfo) // 1024,
        "kernel": platform.release(),
        "os": os_release.get("PRETTY_NAME", platform.system()),
        "python": platform.python_version(),
        "python_executable": os.path.realpath(sys.executable),  # the interpreter ctrd runs on
        "cgroups": cgroup_layout(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "loadavg_at_start": os.getloadavg()[0],
        "cpu_pressure_avg60_at_start": cpu_pressure_avg60(),
    }
