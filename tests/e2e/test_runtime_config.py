"""config.json features applied for real: binds, read-only root, sysctl, rlimits, oom score,
cgroup namespace, devices, umask, env and cwd."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import Container, Stdio
from tests.rootfs import make_busybox_rootfs, write_bundle

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ctrdt-rfs-", dir="/tmp"))
    try:
        yield make_busybox_rootfs(d / "rootfs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(rootfs: Path, tmp: Path, script: str, mutate: Callable[[dict[str, Any]], None]) -> tuple[int, str]:
    cid = "f" + uuid.uuid4().hex[:10]
    bundle = write_bundle(tmp / cid, ["sh", "-c", script], rootfs, cgroups_path=f"/ctrd-rt-test/{cid}", mutate=mutate)
    r, w = os.pipe()
    try:
        c = Container.create(bundle, cid, Stdio(w, w, w))
    finally:
        os.close(w)
    try:
        c.start()
        _, status = os.waitpid(c.pid, 0)
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        return os.waitstatus_to_exitcode(status), b"".join(chunks).decode()
    finally:
        os.close(r)
        c.delete()


def test_binds_readonly_root_and_process_settings(rootfs: Path, short_tmp: Path) -> None:
    shared = short_tmp / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from-host\n")
    hostfile = short_tmp / "hostname"
    hostfile.write_text("bound-file\n")

    def mutate(s: dict[str, Any]) -> None:
        s["root"]["readonly"] = True
        s["mounts"] += [
            {"destination": "/data", "type": "bind", "source": str(shared), "options": ["rbind", "rw"]},
            {"destination": "/ro", "type": "bind", "source": str(shared), "options": ["rbind", "ro", "nosuid"]},
            {"destination": "/etc/hostname", "type": "bind", "source": str(hostfile), "options": ["bind", "ro"]},
            {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1777"]},
        ]
        s["linux"]["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "0", "kernel.msgmax": "4096"}
        s["process"].update(
            cwd="/work/here",
            env=["PATH=/bin:/usr/bin", "FOO=bar"],
            rlimits=[{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}],
            oomScoreAdj=321,
            user={"uid": 0, "gid": 0, "umask": 0o077},
        )

    code, out = run(rootfs, short_tmp, "pwd; echo $FOO; cat /data/in.txt; echo w > /data/out.txt && echo WROTE-DATA; "
                    "echo w > /ro/x || echo RO-REFUSED; touch /newfile || echo ROOT-RO; cat /etc/hostname; "
                    "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/msgmax; ulimit -n; ulimit -Hn; "
                    "cat /proc/self/oom_score_adj; touch /scratch/f && stat -c %a /scratch/f", mutate)
    assert code == 0, out
    lines = [line for line in out.splitlines() if "Read-only" not in line and "can't" not in line]
    assert lines == ["/work/here", "bar", "from-host", "WROTE-DATA", "RO-REFUSED", "ROOT-RO", "bound-file",
                     "0", "4096", "123", "456", "321", "600"]
    assert (shared / "out.txt").read_text() == "w\n"
    assert not (shared / "x").exists()


def test_cgroup_namespace_is_rooted_at_the_container(rootfs: Path, short_tmp: Path) -> None:
    def cgns(s: dict[str, Any]) -> None:
        s["linux"]["namespaces"].append({"type": "cgroup"})

    code, out = run(rootfs, short_tmp, "grep -E ':(pids|memory):' /proc/self/cgroup", cgns)
    assert code == 0
    lines = out.split()
    assert len(lines) == 2 and all(line.endswith(":/") for line in lines), out


def test_device_cgroup_denies_what_is_not_allowed(rootfs: Path, short_tmp: Path) -> None:
    _, out = run(rootfs, short_tmp, "mknod /tmp/mem c 1 1 && echo MKNOD; rm -f /tmp/mem; "
                 "echo x > /dev/null && echo NULL-OK", lambda s: None)
    assert "MKNOD" not in out  # docker's device rules allow no mknod of other devices
    assert "NULL-OK" in out


def test_additional_gids_and_home(rootfs: Path, short_tmp: Path) -> None:
    def user(s: dict[str, Any]) -> None:
        s["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10, 20]}
        s["process"]["env"] = ["PATH=/bin"]

    code, out = run(rootfs, short_tmp, "id -u; id -g; id -G; echo $HOME", user)
    assert code == 0
    uid, gid, groups, home = out.splitlines()[:4]
    assert (uid, gid, set(groups.split()), home) == ("1000", "1000", {"1000", "10", "20"}, "/home/user")
