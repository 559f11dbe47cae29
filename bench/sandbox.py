"""A private mount + network namespace that every daemon of the bench lives in.

Why: the daemons' mounts (overlay, nsfs), bridges and veths then never appear in the host's views,
so a bench run cannot disturb the host's network (no docker0, no NAT) nor the leak checks of test runs
on the same machine, and everything vanishes with the holder process. /sys is remounted so that sysfs
shows the sandbox's own network devices; the host's cgroup mounts are carried over.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

_HOLDER = r"""
set -e
ip link set lo up
mkdir -p "$1/cg"
mount --make-rprivate /
mount --rbind /sys/fs/cgroup "$1/cg"
mount -t sysfs sysfs /sys
mount --move "$1/cg" /sys/fs/cgroup
echo ready
exec sleep infinity
"""


class Sandbox:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.pid = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        script = self.workdir / "holder.sh"
        script.write_text(_HOLDER)
        self._proc = subprocess.Popen(
            ["unshare", "-m", "-n", "--propagation", "private", "sh", str(script), str(self.workdir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        if line != "ready":
            rest = self._proc.stdout.read().decode() if self._proc.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"sandbox namespace setup failed: {line} {rest}".strip())
        self.pid = self._proc.pid

    def mnt_ns(self) -> str:
        return os.readlink(f"/proc/{self.pid}/ns/mnt")

    def argv(self, cmd: Sequence[str]) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-m", "-n", "--", *cmd]

    def run(self, cmd: Sequence[str], check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(cmd), capture_output=True, text=True, check=check, timeout=timeout)

    def mount_tmpfs(self, path: Path) -> Path:
        """A tmpfs at path, seen only inside the sandbox: daemons' run state lives on tmpfs (/run) on a
        usual host, and this machine's /run is on disk. Gone with the sandbox."""
        path.mkdir(parents=True, exist_ok=True)
        self.run(["mount", "-t", "tmpfs", "-o", "mode=0711", "tmpfs", str(path)])
        return path

    def members(self) -> list[int]:
        """Pids that live in the sandbox's mount namespace, the holder excluded."""
        if not self.pid:
            return []
        ns = self.mnt_ns()
        out: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.pid:
                continue
            try:
                if os.readlink(entry / "ns" / "mnt") == ns:
                    out.append(int(entry.name))
            except OSError:
                continue
        return out

    def kill_members(self) -> list[int]:
        """Last resort at teardown: SIGKILL whatever the bench started in the sandbox and left running."""
        left = self.members()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while self.members() and time.monotonic() < deadline:
            time.sleep(0.05)
        return left

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(timeout=10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None
        self.pid = 0
