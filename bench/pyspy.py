"""Where ctrd spends its CPU on the latency path: py-spy on the daemon and its descendants (shims,
launcher) while the API runs `true` again, summarised from py-spy's collapsed stacks."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

_PROCESS = re.compile(r'^process (\d+):"?(.*?)"?$')


class PySpy:
    """`py-spy record` attached to a running pid (and its subprocesses) until stop()."""

    def __init__(self, pid: int, dest: Path, rate: int = 250) -> None:
        self.pid = pid
        self.dest = dest
        self.rate = rate
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str | None:
        return shutil.which("py-spy")

    def start(self) -> None:
        binary = self.available()
        if binary is None:
            raise RuntimeError("py-spy not installed (pip install py-spy)")
        self.proc = subprocess.Popen([binary, "record", "--pid", str(self.pid), "--subprocesses", "--format", "raw",
                                      "--rate", str(self.rate), "--nonblocking", "--output", str(self.dest)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> str:
        if self.proc is None:
            return ""
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
        self.proc = None
        return err.decode(errors="replace")


def process_name(frame: str) -> str:
    """'process 123:"/usr/bin/python3 /usr/local/bin/ctrd --root ..."' → 'ctrd' (the command's name)."""
    m = _PROCESS.match(frame)
    if not m:
        return frame
    words = m.group(2).split()
    for word in words:
        base = word.rsplit("/", 1)[-1]
        if not base.startswith("python") and not base.startswith("-"):
            return base
    return words[0].rsplit("/", 1)[-1] if words else "?"


def short(frame: str) -> str:
    """'handle (daemon/containers/manager.py:120)' → 'handle (daemon/containers/manager.py)'."""
    return re.sub(r":\d+\)$", ")", frame.strip())


def summarize_collapsed(text: str, top: int = 15) -> dict[str, Any]:
    """Per-process share of samples, top self frames and top inclusive functions (in % of samples)."""
    total = 0
    by_process: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = stack.split(";")
        # --subprocesses nests process frames parent → child: the last one names the sampled process.
        marks = [i for i, f in enumerate(frames) if f.startswith("process ")]
        proc = process_name(frames[marks[-1]]) if marks else "?"
        frames = [short(f) for f in frames[(marks[-1] + 1 if marks else 0):]]
        if not frames:
            continue
        total += count
        by_process[proc] += count
        self_time[f"{proc}: {frames[-1]}"] += count
        for f in set(frames):
            inclusive[f"{proc}: {f}"] += count
    if total == 0:
        return {"samples": 0}

    def pct(c: Counter[str]) -> list[list[Any]]:
        return [[name, round(100.0 * n / total, 1)] for name, n in c.most_common(top)]

    return {"samples": total, "by_process": pct(by_process), "top_self": pct(self_time),
            "top_inclusive": pct(inclusive)}
