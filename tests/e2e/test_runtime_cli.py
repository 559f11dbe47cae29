"""`ctrd-runtime` driven like runc: run, the create/start/kill/delete lifecycle, pause, exec, and
bad input (one clear line, non-zero exit, nothing left behind)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.rootfs import make_busybox_rootfs, write_bundle

pytestmark = pytest.mark.root

CLI = [sys.executable, "-m", "runtime.cli"]
CG = Path("/sys/fs/cgroup/pids/ctrd-rt-test")


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ctrdt-rfs-", dir="/tmp"))
    try:
        yield make_busybox_rootfs(d / "rootfs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Cli:
    def __init__(self, tmp: Path, rootfs: Path) -> None:
        self.tmp = tmp
        self.rootfs = rootfs
        self.root = tmp / "state"
        self.log = tmp / "log.json"
        self.ids: list[str] = []

    def __call__(self, *args: str, out: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        cmd = [*CLI, "--root", str(self.root), "--log", str(self.log), "--log-format", "json", *args]
        if out is None:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        err = out.with_suffix(".err")
        with open(out, "w") as f, open(err, "w") as e:
            # create/run hand their stdio to the container: never a pipe we would wait on.
            p = subprocess.run(cmd, stdout=f, stderr=e, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        p.stdout = out.read_text()
        p.stderr = err.read_text()
        return p

    def bundle(self, args: list[str], mutate: Callable[[dict[str, Any]], None] | None = None,
               cid: str | None = None) -> tuple[str, Path]:
        cid = cid or "c" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        return cid, write_bundle(self.tmp / f"b-{cid}", args, self.rootfs, cgroups_path=f"/ctrd-rt-test/{cid}",
                                 mutate=mutate)

    def state(self, cid: str) -> dict[str, Any]:
        p = self("state", cid)
        assert p.returncode == 0, p.stderr
        result: dict[str, Any] = json.loads(p.stdout)
        return result


@pytest.fixture
def cli(short_tmp: Path, rootfs: Path) -> Iterator[Cli]:
    c = Cli(short_tmp, rootfs)
    yield c
    for cid in c.ids:
        c("delete", "--force", cid)


def _leftovers(cid: str, cli: Cli) -> list[str]:
    left = []
    if (cli.root / cid).exists():
        left.append(f"state dir {cli.root / cid}")
    for ctrl in ("pids", "memory", "freezer", "cpu"):
        if Path(f"/sys/fs/cgroup/{ctrl}/ctrd-rt-test/{cid}").exists():
            left.append(f"cgroup {ctrl}")
    with open("/proc/self/mountinfo") as f:
        if str(cli.tmp) in f.read():
            left.append("mount")
    return left


def test_run_isolates_and_returns_the_exit_code(cli: Cli, short_tmp: Path) -> None:
    marker = f"/tmp/ctrd-host-only-{uuid.uuid4().hex[:8]}"
    Path(marker).write_text("host")
    try:
        cid, bundle = cli.bundle(["sh", "-c", f"echo pid=$$; hostname; test -e {marker} && echo HOSTFILE; "
                                             "readlink /proc/self/ns/mnt; exit 3"])
        p = cli("run", "--bundle", str(bundle), cid, out=short_tmp / "out")
    finally:
        os.unlink(marker)
    assert p.returncode == 3, p.stderr
    lines = p.stdout.split()
    assert lines[0] == "pid=1"
    assert lines[1] == "ctr"
    assert "HOSTFILE" not in p.stdout
    assert lines[2].startswith("mnt:[") and lines[2] != os.readlink("/proc/self/ns/mnt")
    assert _leftovers(cid, cli) == []


def test_create_start_kill_delete(cli: Cli, short_tmp: Path) -> None:
    cid, bundle = cli.bundle(["sh", "-c", "touch /tmp/started-$$-x; exec sleep 30"])
    p = cli("create", "--bundle", str(bundle), "--pid-file", str(short_tmp / "pid"), cid, out=short_tmp / "out")
    assert p.returncode == 0, p.stderr
    pid = int((short_tmp / "pid").read_text())
    st = cli.state(cid)
    assert (st["status"], st["pid"], st["bundle"]) == ("created", pid, str(bundle))
    assert not (cli.rootfs / "tmp" / "started-1-x").exists()
    assert cli("start", cid).returncode == 0
    assert cli.state(cid)["status"] == "running"
    deadline = time.monotonic() + 20  # generous: a loaded machine is slow, not wrong
    while not (cli.rootfs / "tmp" / "started-1-x").exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    (cli.rootfs / "tmp" / "started-1-x").unlink()
    assert cli("start", cid).returncode != 0  # a second start fails
    assert cli("delete", cid).returncode != 0  # running: needs --force
    assert cli("kill", cid, "KILL").returncode == 0
    deadline = time.monotonic() + 20  # generous: a loaded machine is slow, not wrong
    while cli.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert cli("delete", cid).returncode == 0
    assert cli("state", cid).returncode != 0
    assert _leftovers(cid, cli) == []


def test_pause_resume_and_ps(cli: Cli, short_tmp: Path) -> None:
    cid, bundle = cli.bundle(["sh", "-c", "sleep 30 & exec sleep 30"])
    assert cli("run", "-d", "--bundle", str(bundle), cid, out=short_tmp / "out").returncode == 0
    deadline = time.monotonic() + 20  # generous: a loaded machine is slow, not wrong
    while len(json.loads(cli("ps", "--format", "json", cid).stdout)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert cli("pause", cid).returncode == 0
    assert cli.state(cid)["status"] == "paused"
    assert Path(f"/sys/fs/cgroup/freezer/ctrd-rt-test/{cid}/freezer.state").read_text().strip() == "FROZEN"
    assert cli("resume", cid).returncode == 0
    assert cli.state(cid)["status"] == "running"
    assert cli("resume", cid).returncode != 0
    assert cli("kill", "--all", cid, "9").returncode == 0
    assert cli("delete", "--force", cid).returncode == 0
    assert _leftovers(cid, cli) == []


def test_exec_exit_codes(cli: Cli, short_tmp: Path) -> None:
    cid, bundle = cli.bundle(["sleep", "30"])
    assert cli("run", "-d", "--bundle", str(bundle), cid, out=short_tmp / "out").returncode == 0
    assert cli("exec", cid, "sh", "-c", "exit 42").returncode == 42
    p = cli("exec", cid, "nosuchcmd")
    assert p.returncode == 255
    assert p.stderr.strip().splitlines() == ['ctrd-runtime: exec: "nosuchcmd": executable file not found in $PATH']
    log = [json.loads(line) for line in cli.log.read_text().splitlines()]
    assert log[-1]["level"] == "error" and "nosuchcmd" in log[-1]["msg"] and log[-1]["time"]
    proc = short_tmp / "process.json"
    proc.write_text(json.dumps({"args": ["sh", "-c", "echo $HOME $(id -u)"], "cwd": "/", "user": {"uid": 1000, "gid": 1000},
                                "env": ["PATH=/bin"]}))
    p = cli("exec", "--process", str(proc), cid)
    assert (p.returncode, p.stdout.strip()) == (0, "/home/user 1000")
    assert cli("exec", "nosuch-container", "true").returncode == 255


def test_list_and_delete_force_of_missing(cli: Cli, short_tmp: Path) -> None:
    cid, bundle = cli.bundle(["sleep", "30"])
    assert cli("create", "--bundle", str(bundle), cid, out=short_tmp / "out").returncode == 0
    rows = json.loads(cli("list", "--format", "json").stdout)
    assert [(r["id"], r["status"]) for r in rows] == [(cid, "created")]
    assert cli("delete", cid).returncode == 0  # created containers delete without --force
    assert _leftovers(cid, cli) == []
    assert cli("delete", "--force", "never-existed").returncode == 0
    p = cli("state", "never-existed")
    assert p.returncode != 0 and len(p.stderr.strip().splitlines()) == 1


def _bad(cli: Cli, short_tmp: Path, cid: str, bundle: Path, expect: str) -> None:
    for verb in ("run", "create"):
        p = cli(verb, "--bundle", str(bundle), cid, out=short_tmp / "out")
        assert p.returncode != 0
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1, p.stderr
        assert expect in lines[0]
        assert _leftovers(cid, cli) == []


@pytest.mark.parametrize(
    ("name", "mutate", "expect"),
    [
        ("empty-args", lambda s: s["process"].update(args=[]), "process.args: must not be empty"),
        ("relative-cwd", lambda s: s["process"].update(cwd="tmp"), "process.cwd"),
        ("unknown-ns", lambda s: s["linux"]["namespaces"].append({"type": "bogus"}), "unknown namespace type 'bogus'"),
        ("missing-rootfs", lambda s: s["root"].update(path="/nonexistent/rootfs"), "root.path"),
        ("no-netns", lambda s: [n.update(path="/run/ctrd-no-such-netns") for n in s["linux"]["namespaces"]
                                if n["type"] == "network"], "/run/ctrd-no-such-netns"),
    ],
)
def test_bad_spec_is_refused_with_one_line(cli: Cli, short_tmp: Path, name: str,
                                           mutate: Callable[[dict[str, Any]], None], expect: str) -> None:
    cid, bundle = cli.bundle(["true"], mutate=mutate)
    _bad(cli, short_tmp, cid, bundle, expect)


def test_malformed_json_is_refused(cli: Cli, short_tmp: Path) -> None:
    cid, bundle = cli.bundle(["true"])
    (bundle / "config.json").write_text('{"process": ')
    _bad(cli, short_tmp, cid, bundle, "is not valid json")


@pytest.mark.parametrize("bad_id", ["a/b", "..", "../x", "x..y"])
def test_bad_ids_are_refused(cli: Cli, short_tmp: Path, bad_id: str) -> None:
    _, bundle = cli.bundle(["true"])
    p = cli("create", "--bundle", str(bundle), bad_id, out=short_tmp / "out")
    assert p.returncode != 0
    assert len(p.stderr.strip().splitlines()) == 1 and "invalid container id" in p.stderr
    assert not cli.root.exists() or not any(cli.root.iterdir())


def test_duplicate_id_is_refused_and_the_first_survives(cli: Cli, short_tmp: Path) -> None:
    cid, bundle = cli.bundle(["sleep", "30"])
    assert cli("create", "--bundle", str(bundle), cid, out=short_tmp / "out").returncode == 0
    p = cli("create", "--bundle", str(bundle), cid, out=short_tmp / "out2")
    assert p.returncode != 0
    assert p.stderr.strip().splitlines() == [f"ctrd-runtime: container {cid} already exists"]
    assert cli.state(cid)["status"] == "created"


def test_update_changes_limits(cli: Cli, short_tmp: Path) -> None:
    cid, bundle = cli.bundle(["sleep", "30"])
    assert cli("run", "-d", "--bundle", str(bundle), cid, out=short_tmp / "out").returncode == 0
    res = short_tmp / "res.json"
    res.write_text(json.dumps({"pids": {"limit": 33}}))
    assert cli("update", "--resources", str(res), cid).returncode == 0
    assert Path(f"/sys/fs/cgroup/pids/ctrd-rt-test/{cid}/pids.max").read_text().strip() == "33"
    assert cli("update", "--memory", str(32 << 20), cid).returncode == 0
    assert Path(f"/sys/fs/cgroup/memory/ctrd-rt-test/{cid}/memory.limit_in_bytes").read_text().strip() == str(32 << 20)
    assert cli("delete", "--force", cid).returncode == 0


def test_console_socket_receives_the_pty_master(cli: Cli, short_tmp: Path) -> None:
    import socket

    cid, bundle = cli.bundle(["sh", "-c", "test -t 1 && echo ON-A-TTY"], mutate=lambda s: s["process"].update(terminal=True))
    path = str(short_tmp / "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind(path)
        srv.listen(1)
        srv.settimeout(30)
        proc = subprocess.Popen([*CLI, "--root", str(cli.root), "create", "--bundle", str(bundle),
                                 "--console-socket", path, cid], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        conn, _ = srv.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    master = fds[0]
    try:
        assert cli("start", cid).returncode == 0
        out = b""
        deadline = time.monotonic() + 10
        while b"ON-A-TTY" not in out and time.monotonic() < deadline:
            try:
                chunk = os.read(master, 1024)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    assert b"ON-A-TTY" in out
