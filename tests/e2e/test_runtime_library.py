"""The runtime library as the shim uses it: create, start, exec, pause/resume, stats, delete."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runtime import Container, ProcessSpec, Status, Stdio, errors
from runtime.cgroups import V2Cgroup
from runtime.spec_resources import Resources
from tests.rootfs import make_busybox_rootfs, write_bundle

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ctrdt-rfs-", dir="/tmp"))
    try:
        yield make_busybox_rootfs(d / "rootfs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


@dataclass
class Run:
    container: Container
    out_r: int

    def wait(self) -> tuple[int, str]:
        _, status = os.waitpid(self.container.pid, 0)
        return os.waitstatus_to_exitcode(status), self.read()

    def read(self) -> str:
        chunks = []
        while chunk := os.read(self.out_r, 65536):
            chunks.append(chunk)
        os.close(self.out_r)
        self.out_r = -1
        return b"".join(chunks).decode()


Factory = Callable[..., Run]


@pytest.fixture
def make(rootfs: Path, short_tmp: Path) -> Iterator[Factory]:
    made: list[Run] = []

    def factory(args: list[str], mutate: Callable[[dict[str, Any]], None] | None = None, start: bool = True,
                state_dir: str | None = None) -> Run:
        cid = "t" + uuid.uuid4().hex[:10]
        bundle = write_bundle(short_tmp / cid, args, rootfs, cgroups_path=f"/ctrd-rt-test/{cid}", mutate=mutate)
        r, w = os.pipe()
        null = os.open("/dev/null", os.O_RDONLY)
        try:
            c = Container.create(bundle, cid, Stdio(null, w, w), state_dir=state_dir)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
            os.close(null)
        run = Run(c, r)
        made.append(run)
        if start:
            c.start()
        return run

    yield factory
    for run in made:
        run.container.delete()
        try:
            os.waitpid(run.container.pid, 0)
        except ChildProcessError:
            pass
        if run.out_r >= 0:
            os.close(run.out_r)


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
    assert c.status() is Status.CREATED
    assert c.pids() == [c.pid]
    time.sleep(0.05)
    c.start()
    assert run.wait() == (0, "started\n")
    assert c.status() is Status.STOPPED


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


def test_missing_command_fails_create_and_leaves_nothing(make: Factory) -> None:
    with pytest.raises(errors.ExecError) as ei:
        make(["nosuchcmd"])
    assert ei.value.reason == "exec-not-found"
    assert not any(p.name.startswith("t") for p in Path("/sys/fs/cgroup/pids/ctrd-rt-test").iterdir()
                   if p.is_dir())


def test_pause_freezes_every_process_and_resume_thaws(make: Factory) -> None:
    run = make(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    c = run.container
    deadline = time.monotonic() + 5
    while len(c.pids()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(c.pids()) == 3
    c.pause()
    assert c.status() is Status.PAUSED
    freezer = Path(c.cgroup.paths["freezer"]) / "freezer.state"
    assert freezer.read_text().strip() == "FROZEN"
    c.resume()
    assert freezer.read_text().strip() == "THAWED"
    assert c.status() is Status.RUNNING
    c.kill(signal.SIGKILL, all=True)
    run.wait()


def test_stats_and_delete_removes_cgroup(make: Factory) -> None:
    def limits(s: dict[str, Any]) -> None:
        s["linux"]["resources"].update(memory={"limit": 64 << 20}, pids={"limit": 50})

    run = make(["sleep", "30"], mutate=limits)
    c = run.container
    st = c.stats()
    assert st.memory_limit == 64 << 20
    assert st.pids_limit == 50
    assert st.pids_current == 1
    assert st.memory_usage > 0
    assert not c.oom_killed()
    dirs = list(c.cgroup.paths.values())
    assert all(os.path.isdir(d) for d in dirs)
    c.delete()
    assert not any(os.path.isdir(d) for d in dirs)
    c.delete()  # idempotent
    code, _ = run.wait()
    assert code == -signal.SIGKILL


def test_fork_bomb_stops_at_pids_limit(make: Factory) -> None:
    def limits(s: dict[str, Any]) -> None:
        s["linux"]["resources"]["pids"] = {"limit": 10}

    run = make(["sleep", "30"], mutate=limits)
    c = run.container
    r, w = os.pipe()
    bomb = ProcessSpec.from_oci({"args": ["sh", "-c", "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done"],
                                 "cwd": "/"})
    pid = c.exec(bomb, Stdio(w, w, w))
    os.close(w)
    _, status = os.waitpid(pid, 0)
    out = os.read(r, 65536).decode()
    os.close(r)
    assert os.waitstatus_to_exitcode(status) != 0
    assert "can't fork" in out
    assert 1 < c.stats().pids_current <= 10
    events = Path(c.cgroup.paths["pids"], "pids.events").read_text().split()
    assert int(events[events.index("max") + 1]) >= 1
    c.kill(signal.SIGKILL, all=True)
    assert run.wait()[0] == -signal.SIGKILL


def test_memory_hog_is_oom_killed(make: Factory) -> None:
    def limits(s: dict[str, Any]) -> None:
        s["linux"]["resources"]["memory"] = {"limit": 16 << 20, "swap": 16 << 20}

    run = make(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"], mutate=limits)
    code, _ = run.wait()
    assert code == -signal.SIGKILL
    assert run.container.oom_killed()
    assert run.container.stats().oom_kills >= 1


def test_load_attaches_by_state_and_by_bundle(make: Factory, short_tmp: Path) -> None:
    state_dir = str(short_tmp / "state")
    run = make(["sleep", "30"], state_dir=state_dir)
    c = run.container
    again = Container.load(c.id, state_dir=state_dir)
    assert again.pid == c.pid
    assert again.status() is Status.RUNNING
    by_bundle = Container.load(c.id, bundle=c.bundle, pid=c.pid)
    assert by_bundle.pids() == [c.pid]
    with pytest.raises(errors.ContainerExists):
        Container.create(c.bundle, c.id, Stdio(0, 1, 2), state_dir=state_dir)
    by_bundle.delete()
    assert run.wait()[0] == -signal.SIGKILL
    assert again.status() is Status.STOPPED


def test_duplicate_id_without_state_dir_is_refused(make: Factory) -> None:
    run = make(["sleep", "30"])
    with pytest.raises(errors.ContainerExists):
        Container.create(run.container.bundle, run.container.id, Stdio(0, 1, 2))
    assert run.container.status() is Status.RUNNING


def test_joins_an_existing_network_namespace_by_path(make: Factory) -> None:
    import subprocess

    holder = subprocess.Popen(["unshare", "-n", "sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{holder.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        want = os.readlink(f"/proc/{holder.pid}/ns/net")

        def join(s: dict[str, Any]) -> None:
            for ns in s["linux"]["namespaces"]:
                if ns["type"] == "network":
                    ns["path"] = f"/proc/{holder.pid}/ns/net"

        run = make(["readlink", "/proc/self/ns/net"], mutate=join)
        code, out = run.wait()
        assert code == 0
        assert out.strip() == want
    finally:
        holder.kill()
        holder.wait()


def test_v2_freeze_in_the_unified_hierarchy() -> None:
    import subprocess

    root = "/sys/fs/cgroup/unified"
    if not os.path.exists(f"{root}/cgroup.controllers"):
        pytest.skip("no cgroup2 hierarchy")
    cg = V2Cgroup(f"/ctrd-rt-test/v2-{uuid.uuid4().hex[:8]}", root=root)
    cg.create(Resources())
    proc = subprocess.Popen(["sleep", "30"])
    try:
        cg.add(proc.pid)
        assert cg.pids() == [proc.pid]
        cg.freeze()
        assert cg.frozen()
        assert "frozen 1" in Path(cg.dir, "cgroup.events").read_text()
        cg.thaw()
        assert not cg.frozen()
        cg.kill_all(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
        proc.wait()
        cg.destroy()
    assert not os.path.exists(cg.dir)


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
    assert Container.load(run.container.id, state_dir=state_dir).status() is Status.CREATED
    run.container.start()
    assert run.wait()[0] == 0
    assert Container.load(run.container.id, state_dir=state_dir).status() is Status.STOPPED


def test_delete_of_a_paused_container_kills_and_removes_everything(make: Factory) -> None:
    run = make(["sh", "-c", "sleep 30 & exec sleep 30"])
    c = run.container
    deadline = time.monotonic() + 5
    while len(c.pids()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    c.pause()
    dirs = list(c.cgroup.paths.values())
    c.delete()
    assert run.wait()[0] == -signal.SIGKILL
    assert not any(os.path.isdir(d) for d in dirs)


def test_joining_a_file_that_is_not_a_namespace_fails_cleanly(make: Factory) -> None:
    def bogus(s: dict[str, Any]) -> None:
        for ns in s["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = "/etc/hostname"

    with pytest.raises(errors.SpecError, match=r"linux.namespaces\[\d\].path: /etc/hostname is not a namespace"):
        make(["true"], mutate=bogus)

    def wrong_type(s: dict[str, Any]) -> None:
        for ns in s["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = "/proc/self/ns/uts"

    with pytest.raises(errors.SpecError, match="another type"):
        make(["true"], mutate=wrong_type)


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
