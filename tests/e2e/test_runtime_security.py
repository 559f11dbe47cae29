"""Docker's default hardening holds inside a container started by the runtime."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import Container, ProcessSpec, Stdio, caps, defaults, errors
from tests.rootfs import make_busybox_rootfs, write_bundle

pytestmark = pytest.mark.root

Runner = Callable[..., tuple[int, str]]


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ctrdt-rfs-", dir="/tmp"))
    try:
        yield make_busybox_rootfs(d / "rootfs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _drain(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


@pytest.fixture
def run(rootfs: Path, short_tmp: Path) -> Runner:
    """Run a shell snippet in a fresh default container; (exit code, stdout+stderr)."""

    def runner(script: str, mutate: Callable[[dict[str, Any]], None] | None = None) -> tuple[int, str]:
        cid = "s" + uuid.uuid4().hex[:10]
        bundle = write_bundle(short_tmp / cid, ["sh", "-c", script], rootfs,
                              cgroups_path=f"/ctrd-rt-test/{cid}", mutate=mutate)
        r, w = os.pipe()
        try:
            c = Container.create(bundle, cid, Stdio(w, w, w))
        finally:
            os.close(w)
        try:
            c.start()
            _, status = os.waitpid(c.pid, 0)
            return os.waitstatus_to_exitcode(status), _drain(r)
        finally:
            c.delete()

    return runner


def test_masked_paths_read_empty_and_cannot_be_unmounted(run: Runner) -> None:
    code, out = run("cat /proc/keys 2>/dev/null | wc -c; cat /proc/timer_list 2>/dev/null | wc -c; "
                    "ls /sys/firmware | wc -l; cat /proc/kcore 2>/dev/null | wc -c; "
                    "umount /proc/kcore && echo UNMOUNTED; exit 0")
    assert code == 0
    lines = out.split()
    assert lines[:4] == ["0", "0", "0", "0"]
    assert "UNMOUNTED" not in out


def test_readonly_paths_refuse_writes(run: Runner) -> None:
    code, out = run("echo h > /proc/sysrq-trigger && echo WROTE-SYSRQ; "
                    "echo 1 > /proc/sys/kernel/ns_last_pid && echo WROTE-SYS; "
                    "touch /sys/fs/cgroup/pids/x && echo WROTE-CGROUP; exit 0")
    assert code == 0
    assert "WROTE" not in out
    assert "Read-only file system" in out


def test_mount_and_remount_proc_fail(run: Runner) -> None:
    _code, out = run("mkdir -p /mnt; mount -t tmpfs none /mnt && echo MOUNTED; "
                    "mount -t proc proc /mnt && echo PROC; exit 0")
    assert "MOUNTED" not in out and "PROC" not in out


def test_default_capabilities_are_dockers(run: Runner) -> None:
    code, out = run("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status")
    assert code == 0
    got = {line.split(":")[0]: int(line.split()[1], 16) for line in out.splitlines()}
    want = caps.mask(defaults.CAPABILITIES)
    assert got == {"CapInh": 0, "CapPrm": want, "CapEff": want, "CapBnd": want, "CapAmb": 0}


def test_non_root_user_has_no_effective_capabilities(run: Runner) -> None:
    def user(s: dict[str, Any]) -> None:
        s["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [1000, 65534]}

    _code, out = run("grep -E '^Cap(Eff|Prm)' /proc/self/status; id -u; id -G; chown 0 /tmp || echo DENIED",
                    mutate=user)
    lines = out.splitlines()
    assert lines[0].split()[1] == "0000000000000000"
    assert lines[1].split()[1] == "0000000000000000"
    assert lines[2] == "1000"
    assert set(lines[3].split()) == {"1000", "65534"}
    assert "DENIED" in out


def test_no_new_privileges(run: Runner) -> None:
    def nnp(s: dict[str, Any]) -> None:
        s["process"]["noNewPrivileges"] = True

    assert "NoNewPrivs:\t1" in run("grep NoNewPrivs /proc/self/status", mutate=nnp)[1]
    assert "NoNewPrivs:\t0" in run("grep NoNewPrivs /proc/self/status")[1]


def test_only_stdio_fds_reach_the_command(run: Runner) -> None:
    keep = os.open("/", os.O_RDONLY)  # a host directory fd the caller happens to hold
    os.set_inheritable(keep, True)
    try:
        _code, out = run("ls /proc/self/fd")
    finally:
        os.close(keep)
    assert sorted(out.split()) == ["0", "1", "2", "3"]  # 3 is ls's own directory fd


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7, 8])
def test_cwd_through_a_leaked_fd_is_refused(run: Runner, n: int) -> None:
    keep = os.open("/", os.O_RDONLY)
    os.set_inheritable(keep, True)

    def cwd(s: dict[str, Any]) -> None:
        s["process"]["cwd"] = f"/proc/self/fd/{n}"

    try:
        try:
            _code, out = run("pwd; ls /", mutate=cwd)
        except errors.RuntimeErr:
            return
    finally:
        os.close(keep)
    # If it ran at all, it must be inside the container.
    assert "debian_version" not in out
    assert not out.startswith("/proc") or "No such" in out


def test_runtime_child_exe_cannot_be_opened_before_execve(rootfs: Path, short_tmp: Path) -> None:
    cid = "x" + uuid.uuid4().hex[:10]
    bundle = write_bundle(short_tmp / cid, ["true"], rootfs, cgroups_path=f"/ctrd-rt-test/{cid}")
    null = os.open("/dev/null", os.O_RDWR)
    c = Container.create(bundle, cid, Stdio(null, null, null))
    try:
        r, w = os.pipe()
        probe = ProcessSpec.from_oci({
            "args": ["sh", "-c", "cat /proc/1/exe > /dev/null && echo OPENED-EXE; readlink /proc/1/fd/0 && echo LINK-FD; "
                                 "cat /proc/1/environ && echo READ-ENV; exit 0"],
            "cwd": "/",
            "capabilities": {k: list(defaults.CAPABILITIES) for k in ("bounding", "effective", "permitted")},
        })
        pid = c.exec(probe, Stdio(null, w, w))
        os.close(w)
        os.waitpid(pid, 0)
        out = _drain(r)
        assert "OPENED-EXE" not in out
        assert "LINK-FD" not in out
        assert "READ-ENV" not in out
        assert "Permission denied" in out
    finally:
        os.close(null)
        c.delete()
        os.waitpid(c.pid, 0)


def test_proc_symlink_in_rootfs_is_refused(short_tmp: Path) -> None:
    rootfs = make_busybox_rootfs(short_tmp / "evil")
    (rootfs / "proc").rmdir()
    (rootfs / "proc").symlink_to("/tmp")
    bundle = write_bundle(short_tmp / "b", ["true"], rootfs, cgroups_path="/ctrd-rt-test/evilproc")
    with pytest.raises(errors.RuntimeErr, match="symlink"):
        Container.create(bundle, "evilproc", Stdio(0, 1, 2))
    assert not os.path.exists("/sys/fs/cgroup/pids/ctrd-rt-test/evilproc")


def test_mount_destination_symlink_cannot_escape_rootfs(short_tmp: Path) -> None:
    rootfs = make_busybox_rootfs(short_tmp / "esc")
    host = short_tmp / "host-target"
    host.mkdir()
    (rootfs / "escape").symlink_to(str(host))

    def tmpfs(s: dict[str, Any]) -> None:
        s["mounts"].append({"destination": "/escape/x", "type": "tmpfs", "source": "tmpfs", "options": []})

    bundle = write_bundle(short_tmp / "b", ["sh", "-c", "touch /escape/x/marker"], rootfs,
                          cgroups_path="/ctrd-rt-test/escape", mutate=tmpfs)
    c = Container.create(bundle, "escape", Stdio(0, 1, 2))
    try:
        c.start()
        os.waitpid(c.pid, 0)
    finally:
        c.delete()
    assert not (host / "x").exists()
    # The absolute link was followed as if the rootfs were /: the mount point landed inside it.
    assert (rootfs / str(host).lstrip("/") / "x").is_dir()


def test_dev_symlink_in_the_image_creates_nothing_on_the_host(short_tmp: Path) -> None:
    rootfs = make_busybox_rootfs(short_tmp / "devlink")
    canary = short_tmp / "canary"
    canary.mkdir()
    (rootfs / "dev").rmdir()
    (rootfs / "dev").symlink_to(str(canary))
    bundle = write_bundle(short_tmp / "b", ["sh", "-c", "test -c /dev/null && echo NULL-OK"], rootfs,
                          cgroups_path="/ctrd-rt-test/devlink")
    r, w = os.pipe()
    try:
        c = Container.create(bundle, "devlink", Stdio(w, w, w))
    finally:
        os.close(w)
    try:
        c.start()
        os.waitpid(c.pid, 0)
        out = _drain(r)
    finally:
        c.delete()
    assert list(canary.iterdir()) == []
    assert "NULL-OK" in out


def test_created_init_holds_only_stdio_and_the_setup_channel(rootfs: Path, short_tmp: Path) -> None:
    """CVE-2024-21626: no host file or directory fd may be open in the init while it waits."""
    leak = os.open("/etc", os.O_RDONLY)
    os.set_inheritable(leak, True)
    cid = "fd" + uuid.uuid4().hex[:8]
    bundle = write_bundle(short_tmp / cid, ["true"], rootfs, cgroups_path=f"/ctrd-rt-test/{cid}")
    r, w = os.pipe()
    try:
        c = Container.create(bundle, cid, Stdio(r, w, w))
    finally:
        os.close(leak)
        os.close(r)
        os.close(w)
    try:
        fds = {int(n): os.readlink(f"/proc/{c.pid}/fd/{n}") for n in os.listdir(f"/proc/{c.pid}/fd")}
    finally:
        c.delete()
        os.waitpid(c.pid, 0)
    assert {0, 1, 2} <= set(fds)
    for n, target in fds.items():
        assert target.startswith(("pipe:", "socket:", "anon_inode:")), (n, target)


@pytest.mark.parametrize("how", ["direct", "shebang", "exec"])
def test_the_runtime_interpreter_is_never_executed_in_a_container(short_tmp: Path, how: str) -> None:
    """CVE-2019-5736: /proc/self/exe of the setup process is the host's python."""
    rootfs = make_busybox_rootfs(short_tmp / "selfexe")
    (rootfs / "evil.sh").write_text("#!/proc/self/exe\nprint('escaped')\n")
    (rootfs / "evil.sh").chmod(0o755)
    args = {"direct": ["/proc/self/exe", "-c", "print('escaped')"], "shebang": ["/evil.sh"], "exec": ["sleep", "30"]}[how]
    bundle = write_bundle(short_tmp / "b", args, rootfs, cgroups_path="/ctrd-rt-test/selfexe")
    null = os.open("/dev/null", os.O_RDWR)
    try:
        if how != "exec":
            with pytest.raises(errors.ExecError, match="refusing to execute the runtime's own interpreter"):
                Container.create(bundle, "selfexe", Stdio(null, null, null))
            return
        c = Container.create(bundle, "selfexe", Stdio(null, null, null))
        try:
            c.start()
            for argv in (["/proc/self/exe"], ["/evil.sh"]):
                with pytest.raises(errors.ExecError, match="own interpreter"):
                    c.exec(ProcessSpec.from_oci({"args": argv, "cwd": "/"}), Stdio(null, null, null))
        finally:
            c.delete()
            os.waitpid(c.pid, 0)
    finally:
        os.close(null)
    assert not os.path.exists("/sys/fs/cgroup/pids/ctrd-rt-test/selfexe")
