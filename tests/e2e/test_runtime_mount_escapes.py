"""Mount-target escapes the runtime must stop (issue 17), on a real kernel (root):
- CVE-2021-30465: a bind-mount destination that is (or is raced into) a symlink to a host path
  is mounted inside the rootfs, never on the host path, because the mount goes through a
  descriptor opened inside the root (/proc/self/fd/N), not a path string resolved twice;
- CVE-2024-45310: the missing directories of such a target are made with mkdirat in parents
  opened inside the root, so nothing is created on the host either;
- CVE-2019-16884: nothing but procfs is mounted on /proc, nothing over files inside it (an image
  volume at /proc, or a symlink leading there, is refused);
- CVE-2019-19921: /proc (and /sys) as a symlink in the image is refused."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import Container, Stdio
from runtime.errors import RuntimeErr
from tests.rootfs import make_busybox_rootfs, write_bundle

pytestmark = pytest.mark.root

RUNS = 20  # containers that must start under the race (a refused create is safe and retried)
MAX_ATTEMPTS = 200
MOUNTS_PER_RUN = 30
SWAPPER = """
import ctypes, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b, out = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3]
n = 0
def bye(*_):
    open(out, "w").write(str(n))
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
sys.stdout.write("ready\\n")
sys.stdout.flush()
while True:
    if libc.renameat2(-100, a, -100, b, 2) == 0:  # AT_FDCWD, RENAME_EXCHANGE
        n += 1
"""


@pytest.fixture
def rootfs() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ctrdt-mnt-", dir="/tmp"))
    try:
        yield make_busybox_rootfs(d / "rootfs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A host directory outside every rootfs, with one marker file: it must stay as it is."""
    d = Path(tempfile.mkdtemp(prefix="ctrdt-hostside-", dir="/tmp"))
    (d / "marker").write_text("host\n")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def source_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ctrdt-vol-", dir="/tmp"))
    (d / "from-source").write_text("volume\n")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def bind(dest: str, source: Path) -> dict[str, Any]:
    return {"destination": dest, "type": "bind", "source": str(source), "options": ["rbind", "rw"]}


def run(short_tmp: Path, rootfs: Path, script: str, mutate: Callable[[dict[str, Any]], None]) -> tuple[int, str]:
    """Create and run `sh -c script` to its end: (exit status, output)."""
    cid = "m" + uuid.uuid4().hex[:10]
    bundle = write_bundle(short_tmp / cid, ["sh", "-c", script], rootfs, cgroups_path=f"/ctrd-rt-test/{cid}",
                          mutate=mutate)
    r, w = os.pipe()
    try:
        c = Container.create(bundle, cid, Stdio(w, w, w))
    finally:
        os.close(w)
    try:
        c.start()
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        _, status = os.waitpid(c.pid, 0)
        return os.waitstatus_to_exitcode(status), b"".join(chunks).decode()
    finally:
        os.close(r)
        c.delete()


def create_fails(short_tmp: Path, rootfs: Path, mutate: Callable[[dict[str, Any]], None]) -> str:
    cid = "m" + uuid.uuid4().hex[:10]
    bundle = write_bundle(short_tmp / cid, ["true"], rootfs, cgroups_path=f"/ctrd-rt-test/{cid}", mutate=mutate)
    with pytest.raises(RuntimeErr) as err:
        Container.create(bundle, cid, Stdio(0, 1, 2))
    assert not Path(f"/sys/fs/cgroup/pids/ctrd-rt-test/{cid}").exists()  # nothing half-made
    assert not Path(f"/sys/fs/cgroup/ctrd-rt-test/{cid}").exists()
    return str(err.value)


def test_cve_2021_30465_symlinked_bind_targets_are_mounted_inside_the_rootfs(
    rootfs: Path, host_dir: Path, source_dir: Path, short_tmp: Path,
) -> None:
    (rootfs / "abs").symlink_to(host_dir)  # absolute: the host's path
    (rootfs / "rel").symlink_to("../" * 12 + str(host_dir).lstrip("/"))  # climbs past the root
    before = sorted(os.listdir(host_dir))

    def mutate(spec: dict[str, Any]) -> None:
        spec["mounts"] += [bind("/abs", source_dir), bind("/rel/sub", source_dir)]

    rc, out = run(short_tmp, rootfs, f"cat {host_dir}/from-source {host_dir}/sub/from-source; "
                  f"test ! -e {host_dir}/marker", mutate)  # the host dir itself is not there
    assert rc == 0 and out == "volume\nvolume\n", out  # inside: where the symlinks lead within the root
    assert sorted(os.listdir(host_dir)) == before and (host_dir / "marker").read_text() == "host\n"


def test_cve_2021_30465_a_target_raced_between_directory_and_symlink_never_leaves_the_root(
    rootfs: Path, host_dir: Path, source_dir: Path, short_tmp: Path,
) -> None:
    """Another container sharing the rootfs swaps /race for a symlink to the host path while the
    runtime mounts onto it (renameat2 RENAME_EXCHANGE, as the exploit does): whichever it finds,
    the volume is mounted inside the root. A mount that went to the host path would be gone from
    the container's mount table once the old root is detached after pivot_root; the swapping goes
    on while the container runs, so where inside it sits (/race, /race-link or the symlink's target
    within the root) is not fixed, only that it is there."""
    (rootfs / "race").mkdir()
    (rootfs / "race-link").symlink_to(host_dir)
    os.makedirs(rootfs / str(host_dir).lstrip("/"), exist_ok=True)
    done = short_tmp / "swaps"
    # a process of its own (no GIL shared with the runtime's parent side), swapping until killed
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(rootfs / "race"), str(rootfs / "race-link"),
                                str(done)], stdout=subprocess.PIPE, text=True)
    assert swapper.stdout is not None and swapper.stdout.readline() == "ready\n"  # its SIGTERM handler is set

    def mutate(spec: dict[str, Any]) -> None:
        # first a nested target whose missing directories are made under the raced /race
        # (CVE-2024-45310: never on the host), then many mounts on /race itself
        spec["mounts"] += [bind("/race/sub/deeper", source_dir)] + [bind("/race", source_dir)] * MOUNTS_PER_RUN

    ran = attempts = 0
    try:
        while ran < RUNS and attempts < MAX_ATTEMPTS:
            attempts += 1
            try:
                rc, out = run(short_tmp, rootfs, f"awk '$4 == \"{source_dir}\" {{print $5}}' /proc/self/mountinfo",
                              mutate)
            except RuntimeErr:
                # a target the swap took away between making it and opening it: refused, which is
                # safe; what must never happen is a mount or a directory on the host
                assert sorted(os.listdir(host_dir)) == ["marker"]
                continue
            ran += 1
            where = out.split()
            assert rc == 0 and len(where) == MOUNTS_PER_RUN + 1, out  # a mount sent to the host is missing here
            tops = {"/race", "/race-link", str(host_dir)}
            assert all(w in tops or w.rsplit("/sub/deeper", 1)[0] in tops for w in where), out
            assert sorted(os.listdir(host_dir)) == ["marker"]
    finally:
        swapper.send_signal(signal.SIGTERM)  # our own child, by its pid
        swapper.wait()
        if swapper.stdout is not None:
            swapper.stdout.close()
    assert int(done.read_text()) > 0
    # about half the creates are refused while the swapping goes on (each one safely): the race
    # must still let containers start, and each that starts is checked above
    assert ran == RUNS, f"only {ran} containers started in {attempts} attempts"


@pytest.mark.parametrize("dest", ["/proc", "/proc/sys", "/proc/kcore", "/proc/self/../sysrq-trigger"])
def test_cve_2019_16884_nothing_but_procfs_goes_on_or_inside_proc(
    rootfs: Path, source_dir: Path, short_tmp: Path, dest: str,
) -> None:
    def mutate(spec: dict[str, Any]) -> None:
        spec["mounts"].append(bind(dest, source_dir))  # an image VOLUME at /proc, say

    assert "/proc" in create_fails(short_tmp, rootfs, mutate)


def test_cve_2019_16884_a_symlink_leading_into_proc_is_refused_too(
    rootfs: Path, source_dir: Path, short_tmp: Path,
) -> None:
    (rootfs / "data").symlink_to("/proc")

    def mutate(spec: dict[str, Any]) -> None:
        spec["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": []})

    assert "/proc" in create_fails(short_tmp, rootfs, mutate)


def test_lxcfs_files_inside_proc_may_be_bound(rootfs: Path, short_tmp: Path, tmp_path: Path) -> None:
    fake = tmp_path / "uptime"
    fake.write_text("12345.67 0.00\n")

    def mutate(spec: dict[str, Any]) -> None:
        spec["mounts"].append({"destination": "/proc/uptime", "type": "bind", "source": str(fake),
                               "options": ["bind", "ro"]})

    assert run(short_tmp, rootfs, "cat /proc/uptime", mutate) == (0, "12345.67 0.00\n")


@pytest.mark.parametrize("name,target", [("proc", "/tmp"), ("proc", "tmp"), ("sys", "/tmp")])
def test_cve_2019_19921_proc_or_sys_as_a_symlink_is_refused(
    rootfs: Path, short_tmp: Path, name: str, target: str,
) -> None:
    (rootfs / name).rmdir()
    (rootfs / name).symlink_to(target)
    assert "not a symlink" in create_fails(short_tmp, rootfs, lambda spec: None)


def test_a_symlinked_cwd_is_made_inside_the_rootfs(rootfs: Path, host_dir: Path, short_tmp: Path) -> None:
    """podman CVE-2026-55686: WORKDIR /a/b with /a a symlink to a host path — the missing /a/b is
    created inside the rootfs, nothing on the host."""
    (rootfs / "a").symlink_to(host_dir)

    def mutate(spec: dict[str, Any]) -> None:
        spec["process"]["cwd"] = "/a/b"

    assert run(short_tmp, rootfs, "pwd; test ! -e marker", mutate) == (0, f"{host_dir}/b\n")  # within the root
    assert sorted(os.listdir(host_dir)) == ["marker"]
    assert (rootfs / str(host_dir).lstrip("/") / "b").is_dir()


@pytest.mark.parametrize("absolute", [True, False])
def test_dev_as_a_symlink_creates_nothing_on_the_host(
    rootfs: Path, host_dir: Path, short_tmp: Path, absolute: bool,
) -> None:
    """runc CVE-2026-41579: /dev in the image a symlink to a host directory (absolute, or climbing
    past the root): /dev's tmpfs, nodes and links are made inside the rootfs."""
    shutil.rmtree(rootfs / "dev")
    (rootfs / "dev").symlink_to(host_dir if absolute else "../" * 12 + str(host_dir).lstrip("/"))
    rc, out = run(short_tmp, rootfs, "test -c /dev/null && echo ok >/dev/null && ls /dev/null", lambda spec: None)
    assert (rc, out) == (0, "/dev/null\n")
    assert sorted(os.listdir(host_dir)) == ["marker"]


def test_a_planted_dev_null_is_never_the_source_of_the_masks(rootfs: Path, short_tmp: Path) -> None:
    """runc CVE-2025-31133: without a /dev tmpfs the image's /dev/null is used to mask files; a
    symlink there (to core_pattern, say) must not be bound read-write over the masked paths."""
    null = rootfs / "dev/null"
    if null.exists() or null.is_symlink():
        null.unlink()
    null.symlink_to("/proc/sys/kernel/core_pattern")
    pattern = Path("/proc/sys/kernel/core_pattern").read_text()

    def mutate(spec: dict[str, Any]) -> None:
        spec["mounts"] = [m for m in spec["mounts"] if not m["destination"].startswith("/dev")]

    assert "/dev/null" in create_fails(short_tmp, rootfs, mutate)
    assert Path("/proc/sys/kernel/core_pattern").read_text() == pattern
