"""What every section of a run shares: the rootfs artefacts, the sandbox, the peers and their daemons."""

from __future__ import annotations

import itertools
import os
import select
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.ctrd_daemon import CTRD_CGROUP_PARENT, Ctrd
from bench.daemons import CONTAINERD_NS, DOCKER_CGROUP_PARENT, Containerd, Dockerd
from bench.peers import Peer
from bench.sandbox import Sandbox


@dataclass
class Context:
    work: Path
    rootfs: Path
    tarball: Path
    oci_archive: Path
    sandbox: Sandbox
    run_dir: Path   # runtime state on tmpfs, where /run is on a usual host (runc's --root)
    peers: dict[str, Peer]
    runs: int
    warmup: int
    n: int
    clients: int
    stop_runs: int
    containerd: Containerd | None = None
    dockerd: Dockerd | None = None
    ctrd: Ctrd | None = None
    ctrd_skip: str = ""
    tag: str = "0"   # this run's suffix for cgroup parents and the containerd namespace
    profile_text: str = ""
    notes: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def cgroup_names(self) -> tuple[str, str, str]:
        return (f"{CONTAINERD_NS}-{self.tag}", f"{DOCKER_CGROUP_PARENT}-{self.tag}", f"{CTRD_CGROUP_PARENT}-{self.tag}")

    def next_id(self, prefix: str) -> str:
        return f"{prefix}-{self.tag}-{next(self._ids)}"

    def path(self, peer: str, binary: str) -> str:
        return self.peers[peer].paths.get(binary, binary)

    def has(self, peer: str) -> bool:
        return peer in self.peers and self.peers[peer].present

    def note(self, text: str) -> None:
        print(f"  note: {text}", flush=True)
        self.notes.append(text)


def run_ok(argv: Sequence[str], timeout: float = 120, env: dict[str, str] | None = None) -> None:
    """Run a command with no terminal; a non-zero exit is an error naming the command."""
    res = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, timeout=timeout, check=False, env=env)
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"{argv[0]} exited {res.returncode}: {err[-1] if err else ''}")


def run_quiet(argv: Sequence[str], timeout: float = 120, env: dict[str, str] | None = None) -> int:
    """Run a command with no terminal and no output; its exit status. The wait ends with the exit
    itself (a pidfd): `subprocess.run(..., timeout=...)` without pipes polls waitpid with a back-off
    that grows to 50 ms, so every timed run landed on 7.5, 15.5, 31.5, 63.5, 113.5 ms (a 70 ms
    `ctrctl ps -a` was reported as 115 ms, measured 2026-12-06)."""
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    fd = os.pidfd_open(proc.pid)
    try:
        if not select.select([fd], [], [], timeout)[0]:
            proc.kill()
            proc.wait()
            raise subprocess.TimeoutExpired(list(argv), timeout)
    finally:
        os.close(fd)
    return proc.wait()


def output(argv: Sequence[str], timeout: float = 120, env: dict[str, str] | None = None) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=True,
                          env=env).stdout


def time_ms(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0
