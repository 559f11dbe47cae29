"""Helpers for the shim e2e tests (no tests in here): a busybox bundle, a harness that launches
shims and leaves nothing behind (shims gone by pid, runtime state and cgroups removed)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ctrd.shim.v1 import shim_pb2
from daemon.shims.client import ShimClient
from daemon.shims.launcher import ShimHandle, ShimLauncher

CGROUP_PARENT = "ctrd-shimtest"
BUSYBOX = "/bin/busybox"
_seq = iter(range(1, 1_000_000))


# "runc" = Debian's runc binary; "" = the runtime library (forked helpers); "@library-direct" = the
# library called in the shim process itself
BACKENDS = [
    pytest.param("runc", id="runc"),
    pytest.param("", id="library"),  # the default: library calls in forks of the shim
    pytest.param("@library-direct", id="library-direct"),
]


def make_rootfs(dest: Path) -> Path:
    try:
        from tests.rootfs import make_busybox_rootfs  # type: ignore[import-not-found]
    except ImportError:
        make_busybox_rootfs = None
    if make_busybox_rootfs is not None:
        return Path(make_busybox_rootfs(dest))
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    for app in ("sh", "sleep", "echo", "cat", "true", "ls", "yes", "head", "seq"):
        os.symlink("busybox", dest / "bin" / app)
    return dest


def oci_config(rootfs: Path, args: list[str], cid: str) -> dict[str, Any]:
    """A minimal OCI config as runc spec writes it, non-terminal, in a ctrd* cgroup parent."""
    ns = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False, "user": {"uid": 0, "gid": 0}, "args": args, "cwd": "/",
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "capabilities": {k: ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
                             for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": True},
        "hostname": cid[:60],
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "cgroupsPath": f"/{CGROUP_PARENT}/{cid}",
            "namespaces": ns,
            "maskedPaths": ["/proc/kcore", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def proc_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def ppid_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[1])


def _until(condition: Callable[[], bool], timeout: float, step: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def reparented_to(pid: int, parent: int, timeout: float = 10.0) -> bool:
    """The init is forked by the runtime's create helper; once that helper has exited (it
    answers "started" first and exits meanwhile) the init is the shim's child."""
    return _until(lambda: ppid_of(pid) == parent, timeout, 0.005)


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    return _until(lambda: not proc_alive(pid), timeout, 0.02)


def cgroup_dirs(cid: str) -> list[Path]:
    root = Path("/sys/fs/cgroup")
    return [p for p in root.glob(f"*/{CGROUP_PARENT}/{cid}") if p.is_dir()]


def remove_cgroups(cid: str) -> None:
    """Last resort after a failed test: kill what is left in the container's cgroups, remove them."""
    for d in cgroup_dirs(cid):
        with contextlib.suppress(OSError, ValueError):
            for pid in (d / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    for d in cgroup_dirs(cid):
        while time.monotonic() < deadline:
            try:
                d.rmdir()
                break
            except OSError:
                time.sleep(0.05)


class Harness:
    """Launches shims for one test and tears every one of them down."""

    def __init__(self, tmp: Path, backend: str) -> None:
        self.tmp = tmp
        self.backend = backend
        self.exec_root = tmp / "er"
        self.rootfs = make_rootfs(tmp / "rootfs")
        self.launcher = ShimLauncher(self.exec_root)
        self.shims: list[tuple[str, ShimHandle, ShimClient | None]] = []

    async def __aenter__(self) -> Harness:
        await self.launcher.start()
        return self

    def new_id(self) -> str:
        return f"shimt{os.getpid()}x{next(_seq)}"

    def bundle(self, cid: str, args: list[str], resources: dict[str, Any] | None = None) -> Path:
        b = self.tmp / "bundles" / cid
        b.mkdir(parents=True)
        config = oci_config(self.rootfs, args, cid)
        if resources:
            config["linux"]["resources"] = resources
        (b / "config.json").write_text(json.dumps(config))
        return b

    def log_path(self, cid: str) -> Path:
        return self.tmp / "containers" / cid / f"{cid}-json.log"

    async def launch(self, cid: str) -> tuple[ShimHandle, ShimClient]:
        h = await self.launcher.launch(cid)
        c = await ShimClient.connect(h.address)
        self.shims.append((cid, h, c))
        return h, c

    async def container(self, args: list[str], *, start: bool = True, max_size: int = 0, max_file: int = 1,
                        resources: dict[str, Any] | None = None,
                        ports: list[shim_pb2.PortForward] | None = None,
                        one_call: bool = False) -> tuple[str, ShimHandle, ShimClient]:
        """`one_call`: Create starts it too (CreateRequest.start), as ctrd asks when no client
        attaches in between; else Start follows Create when `start`."""
        cid = self.new_id()
        h, c = await self.launch(cid)
        await c.create(shim_pb2.CreateRequest(
            id=cid, bundle=str(self.bundle(cid, args, resources)), runtime=self.backend,
            log_path=str(self.log_path(cid)), log_max_size=max_size, log_max_file=max_file, ports=ports or [],
            start=one_call))
        if start and not one_call:
            await c.start()
        return cid, h, c

    def logs(self, cid: str) -> list[dict[str, str]]:
        return [json.loads(x) for x in self.log_path(cid).read_text().splitlines()]

    async def __aexit__(self, *exc: object) -> None:
        for cid, h, c in self.shims:
            if c is not None:
                with contextlib.suppress(Exception):
                    await c.shutdown()
                with contextlib.suppress(Exception):
                    await c.close()
            if not wait_gone(h.pid, 10.0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(h.pid, signal.SIGKILL)
                wait_gone(h.pid, 5.0)
            runc_root = h.state_dir / "runtime"
            if runc_root.exists():
                subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", cid],
                               capture_output=True, check=False)
            remove_cgroups(cid)
        await self.launcher.close()
