"""The runtime library as the shim uses it: create, start, exec, load, stdio and terminal
(cgroups and namespaces: test_runtime_isolation.py)."""

# The tests take the fixtures `make` and `rootfs` (imported below) as parameters.
# ruff: noqa: F811
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from runtime import Container, ProcessSpec, Status, Stdio, errors
from tests.rootfs import write_bundle
from tests.runtime_fixtures import Factory, make, rootfs  # noqa: F401

pytestmark = pytest.mark.root


def test_run_is_pid1_with_its_own_hostname_and_rootfs(make: Factory) -> None:
    run = make(["sh", "-c", "echo pid=$$; hostname; test -e /etc/debian_version && echo HOST; ls /bin/busybox; exit 7"])
    code, out = run.wait()
    assert code == 7
    assert "pid=1\n" in out
    assert "ctr\n" in out
    assert "HOST" not in out
    assert "/bin/busybox" in out


def test_created_does_not_run_the_command_until_start(make: Factory, short_tmp: Path) -> None:
    run = make(["sh", "-c", "echo started"], start=False)
    c = run.container
    assert c.status() == Status.CREATED
    assert c.pids() == [c.pid]
    assert not os.readlink(f"/proc/{c.pid}/exe").endswith("busybox")  # init waits for start, still not exec'd
    os.set_blocking(run.out_r, False)  # and nothing written: the command has not run
    with pytest.raises(BlockingIOError):
        os.read(run.out_r, 1)
    os.set_blocking(run.out_r, True)
    c.start()
    assert run.wait() == (0, "started\n")
    assert c.status() == Status.STOPPED


def test_exec_joins_namespaces_and_cgroup(make: Factory) -> None:
    run = make(["sleep", "30"])
    c = run.container
    r, w = os.pipe()
    pid = c.exec(ProcessSpec.from_oci({"args": ["sh", "-c", "echo $$; hostname; cat /proc/self/cgroup"],
                                        "cwd": "/"}), Stdio(w, w, w))
    os.close(w)
    _, status = os.waitpid(pid, 0)
    out = os.read(r, 65536).decode()
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0
    lines = out.splitlines()
    assert int(lines[0]) > 1  # a pid inside the container's pid namespace
    assert lines[1] == "ctr"
    assert os.readlink(f"/proc/{c.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    c.kill(signal.SIGKILL)
    code, _ = run.wait()
    assert code == -signal.SIGKILL


def test_exec_errors_are_typed(make: Factory) -> None:
    run = make(["sleep", "30"])
    null = os.open("/dev/null", os.O_RDWR)
    try:
        with pytest.raises(errors.ExecError) as ei:
            run.container.exec(ProcessSpec.from_oci({"args": ["nosuchcmd"], "cwd": "/"}), Stdio(null, null, null))
        assert ei.value.reason == "exec-not-found"
        assert str(ei.value) == 'exec: "nosuchcmd": executable file not found in $PATH'
        with pytest.raises(errors.ExecError) as ei:
            run.container.exec(ProcessSpec.from_oci({"args": ["/etc/passwd"], "cwd": "/"}), Stdio(null, null, null))
        assert ei.value.reason == "exec-not-invokable"
    finally:
        os.close(null)


def test_start_returns_before_the_exec_whose_failure_ends_the_init(make: Factory, short_tmp: Path) -> None:
    """start() returns at the init's EXEC, before execve (as runc's start): an execve that fails
    then (a #! interpreter missing: the command itself exists and is executable, so create's
    lookup passes) ends the init with docker's 127, its message on the container's stderr."""
    scripts = short_tmp / "scripts"
    scripts.mkdir()
    script = scripts / "run.sh"
    script.write_text("#!/no/such/interpreter\necho never\n")
    script.chmod(0o755)

    def mount_scripts(spec: dict[str, Any]) -> None:
        spec["mounts"].append({"destination": "/scripts", "type": "bind", "source": str(scripts),
                               "options": ["rbind", "ro"]})

    run = make(["/scripts/run.sh"], mutate=mount_scripts)  # started: no error from start()
    code, out = run.wait()
    assert code == 127
    assert out == 'ctrd-runtime: exec: "/scripts/run.sh": no such file or directory\n'


def test_missing_command_fails_create_and_leaves_nothing(make: Factory) -> None:
    with pytest.raises(errors.ExecError) as ei:
        make(["nosuchcmd"])
    assert ei.value.reason == "exec-not-found"
    assert not any(p.name.startswith("t") for p in Path("/sys/fs/cgroup/pids/ctrd-rt-test").iterdir()
                   if p.is_dir())


def test_load_attaches_by_state_and_by_bundle(make: Factory, short_tmp: Path) -> None:
    state_dir = str(short_tmp / "state")
    run = make(["sleep", "30"], state_dir=state_dir)
    c = run.container
    again = Container.load(c.id, state_dir=state_dir)
    assert again.pid == c.pid
    assert again.status() == Status.RUNNING
    by_bundle = Container.load(c.id, bundle=c.bundle, pid=c.pid)
    assert by_bundle.pids() == [c.pid]
    with pytest.raises(errors.ContainerExists):
        Container.create(c.bundle, c.id, Stdio(0, 1, 2), state_dir=state_dir)
    by_bundle.delete()
    assert run.wait()[0] == -signal.SIGKILL
    assert again.status() == Status.STOPPED


def test_duplicate_id_without_state_dir_is_refused(make: Factory) -> None:
    run = make(["sleep", "30"])
    with pytest.raises(errors.ContainerExists):
        Container.create(run.container.bundle, run.container.id, Stdio(0, 1, 2))
    assert run.container.status() == Status.RUNNING


def test_caller_with_closed_stdio(rootfs: Path, short_tmp: Path) -> None:
    """A daemonised caller may have closed 0/1/2: internal fds then land there and must survive."""
    bundle = write_bundle(short_tmp / "b", ["sh", "-c", "echo ok-$$"], rootfs, cgroups_path="/ctrd-rt-test/nostdio")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            high = os.dup2(w, 50)
            for fd in (0, 1, 2, w, r):
                os.close(fd)
            c = Container.create(bundle, "nostdio", Stdio(high, high, high))
            os.close(high)
            c.start()
            _, status = os.waitpid(c.pid, 0)
            c.delete()
            code = os.waitstatus_to_exitcode(status)
        finally:
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    out = os.read(r, 4096).decode()
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out == "ok-1\n"


def test_terminal_gets_a_controlling_tty(rootfs: Path, short_tmp: Path) -> None:
    def tty(s: dict[str, Any]) -> None:
        s["process"]["terminal"] = True

    master, slave = os.openpty()
    bundle = write_bundle(short_tmp / "tty", ["sh", "-c", "test -t 0 && echo TTY; cut -d' ' -f6,7 /proc/self/stat"],
                          rootfs, cgroups_path="/ctrd-rt-test/tty", mutate=tty)
    try:
        c = Container.create(bundle, "tty", Stdio(slave, slave, slave))
        os.close(slave)
        c.start()
        os.waitpid(c.pid, 0)
        c.delete()
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO once the last slave is closed
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    text = out.decode()
    assert "TTY" in text
    session, tty_nr = text.split()[-2:]
    assert session == "1" and tty_nr != "0"  # session leader with a controlling terminal


def test_load_keeps_created_until_start(make: Factory, short_tmp: Path) -> None:
    state_dir = str(short_tmp / "state")
    run = make(["true"], start=False, state_dir=state_dir)
    assert Container.load(run.container.id, state_dir=state_dir).status() == Status.CREATED
    run.container.start()
    assert run.wait()[0] == 0
    assert Container.load(run.container.id, state_dir=state_dir).status() == Status.STOPPED


def test_exec_without_capabilities_gets_the_containers_set(make: Factory) -> None:
    run = make(["sleep", "30"])
    r, w = os.pipe()
    pid = run.container.exec(ProcessSpec.from_oci({"args": ["grep", "CapEff", "/proc/self/status"], "cwd": "/"}),
                             Stdio(w, w, w))
    os.close(w)
    os.waitpid(pid, 0)
    out = os.read(r, 4096).decode()
    os.close(r)
    from runtime import caps, defaults

    assert int(out.split()[1], 16) == caps.mask(defaults.CAPABILITIES)
    run.container.kill(signal.SIGKILL)
    run.wait()
