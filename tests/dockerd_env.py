"""A private Debian dockerd for the tests that drive ctrd-runtime through docker.

Per the rules every test dockerd follows: its own --data-root, --exec-root, -H unix://,
--pidfile and its own bridge (made here, never `--bridge none`, with which dockerd deletes the
host's docker0), --iptables=false, a cgroup parent of its own, and `ctrd` added as a runtime.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Docker:
    """`docker -H unix://<private socket> ...` as a callable."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.socket = base / "d.sock"

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "-H", f"unix://{self.socket}", *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextmanager
def own_bridge() -> Iterator[tuple[str, str]]:
    """A bridge of the test's own, with a random 10.213.x.0/24: (name, gateway address)."""
    name = "ctrdrt" + uuid.uuid4().hex[:6]
    gw = f"10.213.{random.randrange(1, 250)}.1"
    _ip("link", "add", name, "type", "bridge")
    try:
        _ip("addr", "add", f"{gw}/24", "dev", name)
        _ip("link", "set", name, "up")
        yield name, gw
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=30)


@contextmanager
def private_dockerd(base: Path, bridge: str, cgroup_parent: str, extra: tuple[str, ...] = ()) -> Iterator[Docker]:
    runtime = base / "ctrd-runtime"
    runtime.write_text(f"#!/bin/sh\nexec {sys.executable} -m runtime.cli \"$@\"\n")
    runtime.chmod(0o755)
    d = Docker(base)
    argv = ["dockerd", "--data-root", str(base / "root"), "--exec-root", str(base / "e"),
            "-H", f"unix://{d.socket}", "--pidfile", str(base / "d.pid"), "--iptables=false",
            "--ip-masq=false", "--ip-forward=false", "--bridge", bridge, "--cgroup-parent", "/" + cgroup_parent,
            "--add-runtime", f"ctrd={runtime}", "--log-level", "warn", *extra]
    with open(base / "dockerd.log", "w") as log:
        daemon = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while d("version").returncode != 0:  # no event to wait on before its socket answers
            assert daemon.poll() is None, (base / "dockerd.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "dockerd did not come up"
            time.sleep(0.2)
        yield d
    finally:
        d("rm", "-f", *d("ps", "-aq").stdout.split(), timeout=60)
        d("network", "prune", "-f", timeout=60)
        daemon.send_signal(15)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        for ctl in os.listdir("/sys/fs/cgroup"):
            path = f"/sys/fs/cgroup/{ctl}/{cgroup_parent}"
            if os.path.isdir(path) and not os.path.islink(f"/sys/fs/cgroup/{ctl}"):
                try:
                    os.rmdir(path)
                except OSError:
                    pass
