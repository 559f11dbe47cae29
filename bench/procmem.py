"""Per-process memory from /proc: PSS, USS, RSS (smaps_rollup) and thread count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.stats import percentile


@dataclass(frozen=True, slots=True)
class ProcMem:
    pid: int
    rss_kb: int
    pss_kb: int
    uss_kb: int
    threads: int


def parse_smaps_rollup(text: str) -> dict[str, int]:
    """Field → kB from /proc/<pid>/smaps_rollup (the header line, which has no colon value, is skipped)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts or not parts[0].isdigit():
            continue
        out[key.strip()] = int(parts[0])
    return out


def uss_of(fields: dict[str, int]) -> int:
    # USS = memory only this process maps: private clean + private dirty (+ its private swap: none here).
    return fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)


def parse_threads(status: str) -> int:
    for line in status.splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def read_procmem(pid: int, proc: Path = Path("/proc")) -> ProcMem:
    fields = parse_smaps_rollup((proc / str(pid) / "smaps_rollup").read_text())
    threads = parse_threads((proc / str(pid) / "status").read_text())
    return ProcMem(pid, fields.get("Rss", 0), fields.get("Pss", 0), uss_of(fields), threads)


def rss_kb(pid: int, proc: Path = Path("/proc")) -> int:
    for line in (proc / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0



def ppid_of(pid: int, proc: Path = Path("/proc")) -> int:
    stat = (proc / str(pid) / "stat").read_text()
    # comm may hold spaces or parentheses: fields start after the last ')'.
    return int(stat[stat.rindex(")") + 2:].split()[1])


def comm_of(pid: int, proc: Path = Path("/proc")) -> str:
    return (proc / str(pid) / "comm").read_text().strip()


def children_of(pid: int, proc: Path = Path("/proc")) -> list[int]:
    kids: list[int] = []
    for task in (proc / str(pid) / "task").iterdir():
        try:
            kids.extend(int(x) for x in (task / "children").read_text().split())
        except OSError:
            continue
    return kids


def is_alive(pid: int, proc: Path = Path("/proc")) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def pid_exists(pid: int, proc: Path = Path("/proc")) -> bool:
    """True until pid is reaped (a zombie still holds its pid: kill(pid, 0) succeeds on it)."""
    return (proc / str(pid)).exists()


def ancestor_with_comm(pid: int, prefix: str, proc: Path = Path("/proc")) -> int | None:
    """Nearest ancestor (or pid itself) whose comm starts with prefix: a container's shim."""
    seen = 0
    while pid > 1 and seen < 64:
        try:
            if comm_of(pid, proc).startswith(prefix):
                return pid
            pid = ppid_of(pid, proc)
        except OSError:
            return None
        seen += 1
    return None


def summarize_mem(samples: Sequence[ProcMem]) -> dict[str, float]:
    """Median and mean per field, in MB (1 MB = 1024 kB), threads as counts."""
    if not samples:
        return {}
    out: dict[str, float] = {"count": float(len(samples))}
    for name in ("pss_kb", "uss_kb", "rss_kb"):
        values = [float(getattr(s, name)) for s in samples]
        label = name.removesuffix("_kb")
        out[f"{label}_mb_p50"] = percentile(values, 50) / 1024
        out[f"{label}_mb_mean"] = sum(values) / len(values) / 1024
    threads = [float(s.threads) for s in samples]
    out["threads_p50"] = percentile(threads, 50)
    return out
