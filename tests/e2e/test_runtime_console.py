"""`process.terminal` as runc does it: the pty comes from the container's own devpts, the master
arrives on --console-socket (SCM_RIGHTS), the slave is the process's stdio and controlling
terminal, and process.consoleSize is its size. Driven through `ctrd-runtime` and through
containerd's `ctr run -t` on a real pty."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import console
from tests.rootfs import make_busybox_rootfs, write_bundle

pytestmark = pytest.mark.root

CLI = [sys.executable, "-m", "runtime.cli"]


def read_until(fd: int, marker: bytes, timeout: float = 30) -> bytes:
    """Read a pty master until `marker` shows up (or EOF/EIO); the deadline only bounds a failure."""
    out = b""
    deadline = time.monotonic() + timeout
    while marker not in out:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {out!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every slave is closed
            break
        if not chunk:
            break
        out += chunk
    assert marker in out, out
    return out


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ctrdt-rfs-", dir="/tmp"))
    try:
        yield make_busybox_rootfs(d / "rootfs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Rt:
    def __init__(self, tmp: Path, rootfs: Path) -> None:
        self.tmp = tmp
        self.rootfs = rootfs
        self.ids: list[str] = []
        self.sock_path = str(tmp / "con.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.sock_path)
        self.listener.listen(4)
        self.listener.settimeout(30)

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, "--root", str(self.tmp / "state"), *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def bundle(self, args: list[str], process: dict[str, Any] | None = None) -> tuple[str, Path]:
        cid = "k" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        return cid, write_bundle(self.tmp / f"b-{cid}", args, self.rootfs, cgroups_path=f"/ctrd-rt-test/{cid}",
                                 mutate=lambda s: s["process"].update(process or {}))

    def master(self) -> int:
        """The pty master sent on the console socket (the connection is queued by then)."""
        conn, _ = self.listener.accept()
        with conn:
            return console.recv_master(conn)


@pytest.fixture
def rt(short_tmp: Path, rootfs: Path) -> Iterator[Rt]:
    r = Rt(short_tmp, rootfs)
    try:
        yield r
    finally:
        r.listener.close()
        for cid in r.ids:
            r("delete", "--force", cid)


SCRIPT = "tty; stty size; ls /dev/pts | tr '\\n' ' '; echo; echo ctty > /dev/tty && echo HAS-CTTY; echo DONE"


def test_create_makes_the_pty_in_the_containers_devpts(rt: Rt) -> None:
    cid, bundle = rt.bundle(["sh", "-c", SCRIPT + "; read x; exit 7"],
                            {"terminal": True, "consoleSize": {"height": 33, "width": 101}})
    p = rt("create", "--bundle", str(bundle), "--console-socket", rt.sock_path, cid)
    assert p.returncode == 0, p.stderr
    master = rt.master()
    try:
        assert console.get_size(master) == (33, 101)
        assert rt("start", cid).returncode == 0
        out = read_until(master, b"DONE").decode()
        lines = [line.strip() for line in out.splitlines()]
        assert lines[0] == "/dev/pts/0"
        assert lines[1] == "33 101"
        assert lines[2].split() == ["0", "ptmx"]  # the container's devpts: no host ptys in it
        assert "HAS-CTTY" in lines
        os.write(master, b"\n")  # `read x` returns: the input side works too
        read_until(master, b"\n")
    finally:
        os.close(master)


def test_run_in_the_foreground_returns_the_exit_code(rt: Rt) -> None:
    cid, bundle = rt.bundle(["sh", "-c", "tty; exit 3"], {"terminal": True})
    proc = subprocess.Popen([*CLI, "--root", str(rt.tmp / "state"), "run", "--bundle", str(bundle),
                             "--console-socket", rt.sock_path, cid],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        master = rt.master()
        try:
            assert b"/dev/pts/0" in read_until(master, b"/dev/pts/0")
        finally:
            os.close(master)
        assert proc.wait(timeout=60) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_exec_with_a_terminal_gets_its_own_pty(rt: Rt) -> None:
    cid, bundle = rt.bundle(["sleep", "1000"])
    # The detached init keeps its stdio: never a pipe we would wait on.
    assert subprocess.run([*CLI, "--root", str(rt.tmp / "state"), "run", "--detach", "--bundle", str(bundle), cid],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=60).returncode == 0
    process = {"args": ["sh", "-c", SCRIPT], "cwd": "/", "env": ["PATH=/bin"], "terminal": True,
               "consoleSize": {"height": 12, "width": 34}}
    spec = rt.tmp / "process.json"
    spec.write_text(json.dumps(process))
    p = rt("exec", "--process", str(spec), "--console-socket", rt.sock_path, "--detach", cid)
    assert p.returncode == 0, p.stderr
    master = rt.master()
    try:
        lines = [line.strip() for line in read_until(master, b"DONE").decode().splitlines()]
    finally:
        os.close(master)
    assert lines[:3] == ["/dev/pts/0", "12 34", "0 ptmx"]
    assert "HAS-CTTY" in lines


def test_terminal_without_a_console_socket_is_refused(rt: Rt) -> None:
    cid, bundle = rt.bundle(["true"], {"terminal": True})
    p = rt("create", "--bundle", str(bundle), cid)
    assert p.returncode == 1
    assert "process.terminal" in p.stderr and "console-socket" in p.stderr
    assert not (rt.tmp / "state" / cid).exists()


def test_a_console_socket_nobody_listens_on_is_one_line(rt: Rt) -> None:
    cid, bundle = rt.bundle(["true"], {"terminal": True})
    p = rt("create", "--bundle", str(bundle), "--console-socket", str(rt.tmp / "nobody.sock"), cid)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [f"ctrd-runtime: console socket {rt.tmp}/nobody.sock: no such file or directory"]
    assert not (rt.tmp / "state" / cid).exists()


# ctr resizes the console (the shim's ResizePty) right after the task starts: the container waits
# until the size it reads is the outer terminal's.
SIZED = "tty; while [ \"$(stty size 2>/dev/null)\" != '21 77' ]; do sleep 0.05; done; echo DONE; exit 4"


@pytest.mark.skipif(not (shutil.which("containerd") and shutil.which("ctr")), reason="containerd not installed")
def test_containerd_ctr_run_t_gets_a_tty(short_tmp: Path, rootfs: Path) -> None:
    from tests.e2e.test_runtime_containerd import start_containerd

    with start_containerd(short_tmp) as ctr:
        cid = "ct" + uuid.uuid4().hex[:8]
        pid, master = pty.fork()
        if pid == 0:  # the child: ctr with the pty as its terminal
            try:
                os.execvp("ctr", ["ctr", "--address", ctr.address, "--namespace", ctr.namespace, "run", "-t", "--rm",
                                  "--runc-binary", ctr.runtime, "--cgroup", f"/ctrd-rt-test/{cid}", "--rootfs",
                                  str(rootfs), cid, "sh", "-c", SIZED])
            finally:
                os._exit(127)
        try:
            console.set_size(master, 21, 77)
            out = read_until(master, b"DONE", timeout=60).decode()
            _, status = os.waitpid(pid, 0)
            pid = 0
        finally:
            if pid:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(master)
        lines = [line.strip() for line in out.splitlines()]
        assert "/dev/pts/0" in lines, out
        assert os.waitstatus_to_exitcode(status) == 4
