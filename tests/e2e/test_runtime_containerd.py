"""runc compatibility: Debian's containerd (containerd-shim-runc-v2) drives `ctrd-runtime` as its
runc binary on a plain rootfs: run, exit status, exec, pause/resume, kill."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rootfs import make_busybox_rootfs

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not (shutil.which("containerd") and shutil.which("ctr")), reason="containerd not installed"),
]


# containerd-shim-runc-v2 keeps the runtime's state under /run/containerd/runc/<namespace>, outside
# the test containerd's own root and state: each test uses a namespace of its own and removes it.
RUNC_STATE = Path("/run/containerd/runc")


class Ctr:
    def __init__(self, base: Path, runtime: str) -> None:
        self.address = str(base / "c.sock")
        self.runtime = runtime
        self.namespace = f"ctrd-test-{uuid.uuid4().hex[:12]}"  # containerd: [A-Za-z0-9] runs joined by one [._-]

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ctr", "--address", self.address, "--namespace", self.namespace, *args],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@contextlib.contextmanager
def start_containerd(short_tmp: Path) -> Iterator[Ctr]:
    """A containerd of its own under `short_tmp`, with `ctrd-runtime` as a runc binary."""
    (short_tmp / "config.toml").write_text(f"""version = 2
root = "{short_tmp}/root"
state = "{short_tmp}/state"
[grpc]
  address = "{short_tmp}/c.sock"
[plugins."io.containerd.grpc.v1.cri"]
  disable = true
""")
    with open(short_tmp / "containerd.log", "w") as log:
        daemon = subprocess.Popen(["containerd", "--config", str(short_tmp / "config.toml")], stdout=log,
                                  stderr=log, stdin=subprocess.DEVNULL)
    # A wrapper script: containerd execs the runc binary by path with runc's arguments.
    runtime = short_tmp / "ctrd-runtime"
    runtime.write_text(f"#!/bin/sh\nexec {sys.executable} -m runtime.cli \"$@\"\n")
    runtime.chmod(0o755)
    c = Ctr(short_tmp, str(runtime))
    try:
        deadline = time.monotonic() + 20
        while c("version").returncode != 0:
            assert daemon.poll() is None, (short_tmp / "containerd.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "containerd did not come up"
            time.sleep(0.1)
        yield c
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        with contextlib.suppress(OSError):  # empty once the test's containers are deleted
            os.rmdir(RUNC_STATE / c.namespace)


@pytest.fixture
def ctr(short_tmp: Path) -> Iterator[Ctr]:
    with start_containerd(short_tmp) as c:
        yield c


def test_containerd_drives_ctrd_runtime(ctr: Ctr, short_tmp: Path) -> None:
    rootfs = make_busybox_rootfs(short_tmp / "rootfs")
    def base(cid: str) -> list[str]:  # `--rootfs` is a switch: the rootfs takes the image's place
        return ["--runc-binary", ctr.runtime, "--cgroup", f"/ctrd-rt-test/{cid}", "--rootfs", str(rootfs), cid]

    cid = "cd" + uuid.uuid4().hex[:8]
    p = ctr("run", "--rm", *base(cid), "sh", "-c", "echo pid=$$; exit 5")
    assert p.returncode == 5, p.stderr
    assert p.stdout.strip() == "pid=1"

    cid = "cd" + uuid.uuid4().hex[:8]
    assert ctr("run", "-d", *base(cid), "sleep", "60").returncode == 0
    try:
        p = ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo exec-$$")
        assert (p.returncode, p.stdout.strip()) == (0, "exec-2"), p.stderr
        assert ctr("task", "pause", cid).returncode == 0
        assert "PAUSED" in ctr("task", "ls").stdout
        assert ctr("task", "resume", cid).returncode == 0
        assert ctr("task", "kill", "-s", "SIGKILL", cid).returncode == 0
        deadline = time.monotonic() + 10
        while "STOPPED" not in ctr("task", "ls").stdout:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        ctr("task", "rm", "-f", cid)
        ctr("container", "rm", cid)
    assert not os.path.exists(f"/sys/fs/cgroup/pids/ctrd-rt-test/{cid}")


def test_containerd_task_metrics_of_a_ctrd_runtime_container(ctr: Ctr, short_tmp: Path) -> None:
    """`ctr task metrics` reads the container's cgroups through the shim: they must be the ones
    ctrd-runtime put the init in, with the limits it was given."""
    rootfs = make_busybox_rootfs(short_tmp / "rootfs")
    cid = "cm" + uuid.uuid4().hex[:8]
    assert ctr("run", "-d", "--runc-binary", ctr.runtime, "--cgroup", f"/ctrd-rt-test/{cid}", "--memory-limit",
               str(64 << 20), "--rootfs", str(rootfs), cid, "sleep", "60").returncode == 0
    try:
        p = ctr("task", "metrics", "--format", "json", cid)
        assert p.returncode == 0, p.stderr
        m = json.loads(p.stdout)
        data = m.get("Data") or m.get("data") or m
        mem = data.get("memory") or data.get("Memory")
        assert mem is not None, p.stdout
        usage = mem.get("usage") or mem.get("Usage")
        assert int(usage["limit"]) == 64 << 20
        assert int(usage["usage"]) > 0
        pids = data.get("pids") or data.get("Pids")
        assert int(pids["current"]) >= 1
    finally:
        ctr("task", "kill", "-s", "SIGKILL", cid)
        ctr("task", "rm", "-f", cid)
        ctr("container", "rm", cid)
