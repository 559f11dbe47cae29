"""User namespaces in the runtime library (linux.uidMappings/gidMappings, as runc): the
container's root is an unprivileged host id, /proc and /sys work, devices are bound from the
host, exec joins the user namespace, and bad maps are refused naming the field."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import Stdio
from runtime.errors import SpecError
from tests.rootfs import make_busybox_rootfs
from tests.runtime_fixtures import Run, delete_all, run_factory

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

HOST_BASE = 100000
SIZE = 65536


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.lchown(dirpath, uid, gid)
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


@pytest.fixture(scope="module")
def mapped_rootfs() -> Iterator[Path]:
    """A busybox rootfs owned by the mapped root (the caller chowns, the runtime maps: runc's split)."""
    d = Path(tempfile.mkdtemp(prefix="ctrdt-uns-", dir="/tmp"))
    os.chmod(d, 0o711)  # the mapped root must be able to reach its rootfs (as under docker's userns-remap)
    try:
        rootfs = make_busybox_rootfs(d / "rootfs")
        _chown_tree(rootfs, HOST_BASE, HOST_BASE)
        yield rootfs
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _userns(spec: dict[str, Any]) -> None:
    spec["linux"]["namespaces"].append({"type": "user"})
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": HOST_BASE, "size": SIZE}]
    spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": HOST_BASE, "size": SIZE}]


@pytest.fixture
def run_userns(mapped_rootfs: Path, short_tmp: Path) -> Iterator[Any]:
    made: list[Run] = []
    make = run_factory(mapped_rootfs, short_tmp, made, prefix="u")

    def factory(args: list[str], extra: Any = None, start: bool = True) -> Run:
        def mutate(spec: dict[str, Any]) -> None:
            _userns(spec)
            if extra is not None:
                extra(spec)

        return make(args, mutate, start)

    yield factory
    delete_all(made)


def test_root_in_the_container_is_an_unprivileged_host_user(run_userns: Any) -> None:
    run = run_userns(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; echo ok > /root-made; "
                      "stat -c %u /root-made; ls /proc/1/status >/dev/null && echo proc"], start=False)
    host_status = Path(f"/proc/{run.container.pid}/status").read_text()
    uid_line = next(line for line in host_status.splitlines() if line.startswith("Uid:"))
    # Before start the init is already root of its namespace: the host sees the mapped id.
    assert uid_line.split()[1:] == [str(HOST_BASE)] * 4
    run.container.start()
    code, out = run.wait()
    assert code == 0, out
    lines = out.split()
    assert lines[:6] == ["0", str(HOST_BASE), str(SIZE), "0", str(HOST_BASE), str(SIZE)]
    assert lines[6:] == ["0", "0", "proc"]


def test_pid_one_and_mounts_work_inside(run_userns: Any) -> None:
    run = run_userns(["sh", "-c", "echo $$; mount | grep -c ' /proc type proc'; ls /sys/kernel >/dev/null && echo sys; "
                      "echo x > /dev/null && head -c 4 /dev/zero | wc -c; ls /sys/fs/cgroup >/dev/null && echo cg"])
    code, out = run.wait()
    assert code == 0, out
    assert out.split() == ["1", "1", "sys", "4", "cg"]


def test_the_container_cannot_act_on_host_owned_files(run_userns: Any, short_tmp: Path) -> None:
    # A bind mount of a host-root-owned directory: visible, but root inside is not its owner.
    os.chmod(short_tmp, 0o711)
    host_dir = short_tmp / "hostowned"
    host_dir.mkdir(mode=0o755)
    (host_dir / "secret").write_text("s")
    os.chmod(host_dir / "secret", 0o600)

    def bind(spec: dict[str, Any]) -> None:
        spec["mounts"].append({"destination": "/h", "type": "bind", "source": str(host_dir), "options": ["rbind"]})

    run = run_userns(["sh", "-c", "stat -c %u /h/secret; cat /h/secret || echo denied; touch /h/new || echo nowrite"], bind)
    _, out = run.wait()
    assert out.split()[0] == "65534"  # host root is unmapped: the overflow id
    assert "denied" in out and "nowrite" in out
    assert not (host_dir / "new").exists()


def test_exec_joins_the_user_namespace(run_userns: Any) -> None:
    from runtime.spec_process import ProcessSpec

    run = run_userns(["sleep", "30"])
    r, w = os.pipe()
    null = os.open("/dev/null", os.O_RDONLY)
    try:
        proc = ProcessSpec.from_oci({"args": ["sh", "-c", "id -u; cat /proc/self/uid_map"], "cwd": "/",
                                     "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]})
        pid = run.container.exec(proc, Stdio(null, w, w))
    finally:
        os.close(w)
        os.close(null)
    _, status = os.waitpid(pid, 0)
    out = os.read(r, 65536).decode()
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert out.split() == ["0", "0", str(HOST_BASE), str(SIZE)]


@pytest.mark.parametrize(("maps", "field"), [
    ({"uidMappings": None}, "linux.uidMappings"),
    ({"gidMappings": [{"containerID": 0, "hostID": 1, "size": 0}]}, "linux.gidMappings[0].size"),
    ({"uidMappings": [{"containerID": 0, "hostID": -1, "size": 5}]}, "linux.uidMappings[0].hostID"),
])
def test_bad_maps_are_refused_naming_the_field(run_userns: Any, maps: dict[str, Any], field: str) -> None:
    def bad(spec: dict[str, Any]) -> None:
        for k, v in maps.items():
            if v is None:
                del spec["linux"][k]
            else:
                spec["linux"][k] = v

    with pytest.raises(SpecError) as err:
        run_userns(["true"], bad)
    assert field in str(err.value)
