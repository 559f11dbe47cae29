"""Issue 17's "found by probing" list, each as a regression test against a real ctrd: the data root
is not readable by other local users, docker's per-CPU thermal_throttle masks."""

from __future__ import annotations

import io
import os
import pwd
import signal
import stat
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from ctrd.v1 import container_pb2 as cpb
from runtime.defaults import thermal_throttle_paths
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_ctrctl_e2e import CTRCTL, ctl

pytestmark = pytest.mark.root

SECRET = "CTRD_SECRET=hunter2-in-env"


def _read_as(uid: int, gid: int, path: Path) -> str:
    """Fork, drop to uid/gid, try to read `path`: 'read' or the errno name."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no Python-level cleanup, only _exit
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            try:
                with open(path, "rb") as f:
                    f.read()
                out = b"read"
            except OSError as exc:
                out = (os.strerror(exc.errno or 0)).encode()
            os.write(w, out)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        answer = f.read().decode()
    os.waitpid(pid, 0)
    return answer


def _nobody() -> tuple[int, int]:
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def test_data_root_is_not_world_readable(ctrd: DaemonProc) -> None:  # noqa: F811
    uid, gid = _nobody()
    # the test's temp dir (mkdtemp: 0700) must be traversable, or the test could not fail
    os.chmod(ctrd.base, 0o755)
    control = ctrd.base / "control.json"
    control.write_text("{}")
    os.chmod(control, 0o644)
    assert _read_as(uid, gid, control) == "read"  # the probe itself works

    cid = ctrd.c.create("busybox", ["true"], env=[SECRET], network_mode="none")
    cdir = ctrd.root / "containers" / cid
    for name in ("config.v2.json", "hostconfig.json"):
        assert SECRET.encode() in (cdir / "config.v2.json").read_bytes()
        assert stat.S_IMODE(os.stat(cdir / name).st_mode) == 0o600, name
        assert _read_as(uid, gid, cdir / name) != "read", name
    assert stat.S_IMODE(os.stat(ctrd.root).st_mode) == 0o710
    assert stat.S_IMODE(os.stat(ctrd.root / "containers").st_mode) == 0o710

    # an older ctrd's modes are tightened at start
    ctrd.stop()
    os.chmod(ctrd.root, 0o755)
    os.chmod(ctrd.root / "containers", 0o755)
    os.chmod(cdir, 0o755)
    for name in ("config.v2.json", "hostconfig.json"):
        os.chmod(cdir / name, 0o644)
    assert _read_as(uid, gid, cdir / "config.v2.json") == "read"  # as an older ctrd left it
    ctrd.start()
    assert stat.S_IMODE(os.stat(ctrd.root).st_mode) == 0o710
    assert stat.S_IMODE(os.stat(ctrd.root / "containers").st_mode) == 0o710
    for name in ("config.v2.json", "hostconfig.json"):
        assert stat.S_IMODE(os.stat(cdir / name).st_mode) == 0o600, name
        assert _read_as(uid, gid, cdir / name) != "read", name
    ctrd.c.remove(cid)


def test_thermal_throttle_is_masked_per_cpu(ctrd: DaemonProc) -> None:  # noqa: F811
    """GHSA-6fw5-f8r9-fgfm: each CPU's thermal_throttle counters are masked, as docker does."""
    paths = thermal_throttle_paths()
    if not paths:
        pytest.skip("this host's CPUs have no thermal_throttle directory (a VM): nothing to mask")
    script = "; ".join(f"echo {p}=$(ls -A {p} | wc -l)" for p in paths)
    r = ctl(ctrd, "run", "--rm", "--network", "none", "busybox", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [f"{p}=0" for p in paths]  # masked: an empty read-only tmpfs
    assert all(os.listdir(p) for p in paths)  # while the host's are not empty


# ---------------------------------------------------------------- archive size caps

HUGE = 200 << 20


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def _write_pax_bomb(path: Path, header_size: int) -> None:
    """A tar whose first member is a pax extended header of `header_size` bytes (one valid
    record, written in chunks), followed by a small regular file and the end blocks."""
    payload_len = header_size - len(f"{header_size} path=\n")
    record_prefix = f"{header_size} path=".encode()
    assert len(record_prefix) + payload_len + 1 == header_size
    hdr = tarfile.TarInfo("././@PaxHeader")
    hdr.type = tarfile.XHDTYPE
    hdr.size = header_size
    with open(path, "wb") as f:
        f.write(hdr.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"))
        f.write(record_prefix)
        chunk = b"a" * (1 << 20)
        left = payload_len
        while left:
            n = f.write(chunk[: min(left, len(chunk))])
            left -= n
        f.write(b"\n")
        f.write(b"\0" * (-header_size % 512))
        small = tarfile.TarInfo("etc/hello")
        small.size = 3
        f.write(small.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape") + b"hi\n".ljust(512, b"\0"))
        f.write(b"\0" * 1024)


def _huge_json_archive(path: Path) -> None:
    """A docker-save archive whose manifest.json is 20 MB (valid JSON, whitespace-padded)."""
    body = b"[" + b" " * (20 << 20) + b"]"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("manifest.json")
        ti.size = len(body)
        tf.addfile(ti, io.BytesIO(body))


@pytest.mark.parametrize("verb", ["load", "import"])
def test_archive_with_huge_pax_header_is_refused_without_memory_growth(
        ctrd: DaemonProc, short_tmp: Path, verb: str) -> None:  # noqa: F811
    bomb = short_tmp / "bomb.tar"
    _write_pax_bomb(bomb, HUGE)
    assert ctrd.proc is not None
    pid = ctrd.proc.pid
    before = _status_kb(pid, "VmHWM")
    args = ["image", "load", "-q", "-i", str(bomb)] if verb == "load" else ["image", "import", str(bomb), "bomb:1"]
    r = ctl(ctrd, *args, timeout=180)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "pax extended header" in lines[0] and f"{HUGE} bytes" in lines[0], lines[0]
    grown_mb = (_status_kb(pid, "VmHWM") - before) / 1024
    assert grown_mb < 64, f"daemon peak RSS grew by {grown_mb:.0f} MB while refusing a {HUGE >> 20} MB header"
    r = ctl(ctrd, "image", "ls", "-q")
    assert r.returncode == 0 and ctrd.c.version()  # the daemon still answers; nothing half-loaded


def test_load_refuses_a_huge_json_member_naming_it(ctrd: DaemonProc, short_tmp: Path) -> None:  # noqa: F811
    arc = short_tmp / "huge-manifest.tar"
    _huge_json_archive(arc)
    r = ctl(ctrd, "image", "load", "-q", "-i", str(arc), timeout=120)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "manifest.json" in lines[0] and "larger than" in lines[0], r.stderr


# ---------------------------------------------------------------- exec credentials

USERS = ("echo alice:x:1000:1000::/:/bin/sh >> /etc/passwd; "
         "echo dev:x:2000:alice >> /etc/group; echo ops:x:3000:bob,alice >> /etc/group; "
         "echo other:x:4000:bob >> /etc/group")


def test_exec_keeps_the_users_supplementary_groups(ctrd: DaemonProc) -> None:  # noqa: F811
    """docker's exec -u USER: the user's groups from the container's /etc/group, plus --group-add."""
    r = ctl(ctrd, "run", "-d", "--network", "none", "--group-add", "777", "busybox", "sleep", "1000")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        r = ctl(ctrd, "exec", cid, "sh", "-c", USERS)
        assert r.returncode == 0, r.stderr
        want = {"1000", "2000", "3000", "777"}
        r = ctl(ctrd, "exec", "-u", "alice", cid, "id", "-G")  # the streaming exec (ExecCreate/Start)
        assert r.returncode == 0, r.stderr
        assert set(r.stdout.split()) == want, r.stdout
        res = ctrd.c.call(ctrd.c.containers, "Exec", cpb.ExecRequest(id=cid, args=["id", "-G"], user="alice"))
        assert res.exit_code == 0 and set(res.stdout.decode().split()) == want, res  # the buffered Exec RPC
        r = ctl(ctrd, "exec", cid, "id", "-G")  # the container's user (root) keeps --group-add too
        assert r.returncode == 0 and {"0", "777"} <= set(r.stdout.split()), r.stdout
    finally:
        ctrd.c.remove(cid, force=True)


def _procs_with(marker: bytes) -> list[tuple[int, str]]:
    """(pid, state) of the host's processes whose command line contains `marker`."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker in (p / "cmdline").read_bytes():
                    out.append((int(p.name), (p / "stat").read_text().rsplit(")", 1)[1].split()[0]))
            except OSError:
                pass
    return out


def _wait_for(pred: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_stopped_exec_ends_at_the_callers_deadline(ctrd: DaemonProc) -> None:  # noqa: F811
    """An exec whose process stops itself (SIGSTOP) never ends on its own: the buffered Exec's
    deadline kills it (SIGKILL reaches a stopped process); a streaming exec's client that goes away
    (Ctrl-C) leaves the daemon answering and the container removable, as docker's does."""
    r = ctl(ctrd, "run", "-d", "--network", "none", "busybox", "sleep", "1000")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        marker = f"stopme-{cid[:12]}"
        with pytest.raises(grpc.RpcError) as exc:
            ctrd.c.containers.Exec(cpb.ExecRequest(id=cid, args=["sh", "-c", f"kill -STOP $$; echo {marker}"]),
                                   timeout=3)
        assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        _wait_for(lambda: not _procs_with(marker.encode()), "the stopped exec was never killed")

        env = {k: v for k, v in os.environ.items() if k != "CTRD_ADDRESS"}
        marker2 = f"stopme2-{cid[:12]}"
        p = subprocess.Popen([*CTRCTL, "-a", ctrd.address, "exec", cid, "sh", "-c", f"echo up; kill -STOP $$; echo {marker2}"],
                             stdout=subprocess.PIPE, env=env)
        try:
            assert p.stdout is not None and p.stdout.readline() == b"up\n"
            _wait_for(lambda: any(st == "T" for _, st in _procs_with(marker2.encode())), "exec never stopped")
            p.send_signal(signal.SIGINT)
            assert p.wait(30) != 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()
        assert ctrd.c.version()
        r = ctl(ctrd, "exec", cid, "echo", "still")
        assert (r.returncode, r.stdout) == (0, "still\n"), r.stderr
    finally:
        ctrd.c.remove(cid, force=True)
    assert not _procs_with(f"stopme2-{cid[:12]}".encode())  # rm -f took the stopped exec with it
