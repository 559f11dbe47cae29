"""The motivating case for hooks: Debian's dockerd sets a container's network up in a prestart
hook (libnetwork-setkey). Under a private dockerd with `--add-runtime ctrd=...` and its own test
bridge, `docker run --runtime ctrd` gets an eth0 with an address on that bridge, like runc, on the
default bridge and on a user-defined network, and reaches another container."""

from __future__ import annotations

import os
import random
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dockerd_env import Docker, own_bridge, private_dockerd
from tests.netutil import docker_firewall_netns
from tests.rootfs import make_busybox_rootfs

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not (shutil.which("dockerd") and shutil.which("docker")), reason="docker not installed")]

CGROUP_PARENT = "ctrd-rt-test-dhooks"


@pytest.fixture
def bridge() -> Iterator[tuple[str, str]]:
    # The bridge, and the dockerd (--iptables=false) that the `docker` fixture starts after it in
    # this thread, live in a network namespace of their own: on a host where another dockerd runs
    # (FORWARD policy DROP, br_netfilter on), the host's FORWARD chain would drop the traffic
    # between two containers on the test's bridge.
    with docker_firewall_netns(forward_drop=False), own_bridge() as b:
        yield b


@pytest.fixture
def docker(short_tmp: Path, bridge: tuple[str, str]) -> Iterator[Docker]:
    with private_dockerd(short_tmp, bridge[0], CGROUP_PARENT) as d:
        yield d


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
