"""The motivating case for hooks: Debian's dockerd sets a container's network up in a prestart
hook (libnetwork-setkey). Under a private dockerd with `--add-runtime ctrd=...` and its own test
bridge, `docker run --runtime ctrd` gets an eth0 with an address on that bridge, like runc, on the
default bridge and on a user-defined network, and reaches another container."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_runtime_seccomp_docker import Docker
from tests.rootfs import make_busybox_rootfs

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not (shutil.which("dockerd") and shutil.which("docker")), reason="docker not installed")]

CGROUP_PARENT = "ctrd-rt-test-dhooks"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def bridge() -> Iterator[tuple[str, str]]:
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


@pytest.fixture
def docker(short_tmp: Path, bridge: tuple[str, str]) -> Iterator[Docker]:
    runtime = short_tmp / "ctrd-runtime"
    runtime.write_text(f"#!/bin/sh\nexec {sys.executable} -m runtime.cli \"$@\"\n")
    runtime.chmod(0o755)
    d = Docker(short_tmp)
    argv = ["dockerd", "--data-root", str(short_tmp / "root"), "--exec-root", str(short_tmp / "e"),
            "-H", f"unix://{d.socket}", "--pidfile", str(short_tmp / "d.pid"), "--iptables=false",
            "--ip-masq=false", "--ip-forward=false", "--bridge", bridge[0], "--cgroup-parent", "/" + CGROUP_PARENT,
            "--add-runtime", f"ctrd={runtime}", "--log-level", "warn"]
    with open(short_tmp / "dockerd.log", "w") as log:
        daemon = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while d("version").returncode != 0:
            assert daemon.poll() is None, (short_tmp / "dockerd.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "dockerd did not come up"
            time.sleep(0.2)
        yield d
    finally:
        d("rm", "-f", *d("ps", "-aq").stdout.split(), timeout=60)
        d("network", "prune", "-f", timeout=60)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        for ctl in os.listdir("/sys/fs/cgroup"):
            path = f"/sys/fs/cgroup/{ctl}/{CGROUP_PARENT}"
            if os.path.isdir(path) and not os.path.islink(f"/sys/fs/cgroup/{ctl}"):
                try:
                    os.rmdir(path)
                except OSError:
                    pass


def _image(docker: Docker, tmp: Path) -> str:
    root = make_busybox_rootfs(tmp / "rootfs")
    tar = tmp / "img.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(os.listdir(root)):
            t.add(root / entry, arcname=entry)
    r = docker("import", str(tar), "hooknet:1")
    assert r.returncode == 0, r.stderr
    return "hooknet:1"


def _address(out: str) -> str:
    for line in out.splitlines():
        words = line.split()
        if words[:1] == ["inet"]:
            return words[1].split("/")[0]
    raise AssertionError(f"no IPv4 address in {out!r}")


def test_docker_bridge_network_via_prestart_hook(docker: Docker, short_tmp: Path, bridge: tuple[str, str]) -> None:
    image = _image(docker, short_tmp)
    subnet = bridge[1].rsplit(".", 1)[0] + "."
    for runtime in ("ctrd", "runc"):
        r = docker("run", "--rm", "--runtime", runtime, image, "ip", "-4", "addr", "show", "eth0")
        assert r.returncode == 0, (runtime, r.stderr)
        assert _address(r.stdout).startswith(subnet), (runtime, r.stdout)
    # Two ctrd containers on the default bridge reach each other.
    r = docker("run", "-d", "--runtime", "ctrd", image, "sleep", "60")
    assert r.returncode == 0, r.stderr
    target = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", r.stdout.strip()).stdout.strip()
    assert target.startswith(subnet)
    r = docker("run", "--rm", "--runtime", "ctrd", image, "ping", "-c", "1", "-W", "10", target)
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_docker_user_defined_network_via_prestart_hook(docker: Docker, short_tmp: Path) -> None:
    image = _image(docker, short_tmp)
    third = random.randrange(1, 250)
    r = docker("network", "create", "--subnet", f"10.214.{third}.0/24", "hooknet")
    assert r.returncode == 0, r.stderr
    r = docker("run", "-d", "--runtime", "ctrd", "--network", "hooknet", "--name", "peer", image, "sleep", "60")
    assert r.returncode == 0, r.stderr
    r = docker("run", "--rm", "--runtime", "ctrd", "--network", "hooknet", image,
               "sh", "-c", "ip -4 addr show eth0 && ping -c 1 -W 10 peer")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert _address(r.stdout).startswith(f"10.214.{third}.")
