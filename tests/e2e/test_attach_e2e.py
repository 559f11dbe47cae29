"""Interactive containers end to end: ctrctl on a real pty (Python's pty module, the pty made the
controlling terminal of ctrctl by `setsid -c`, so a resize of it sends SIGWINCH as a terminal
emulator's would), pipes through `run -i`, detach and attach, a daemon killed mid-session, and many
clients attached at once."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import grpc
import pytest

from ctrd.v1 import container_pb2 as cpb
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401

pytestmark = pytest.mark.root

_SCRIPT = Path(sys.executable).parent / "ctrctl"
CTRCTL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "ctrctl.main"]
DEADLINE = 60.0  # bounds a failure only: every wait below ends on what it waits for


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CTRD_ADDRESS"}


def ctl(d: DaemonProc, *args: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CTRCTL, "-a", d.address, *args], capture_output=True, timeout=timeout,
                          env=_env(), **kw)  # type: ignore[call-overload]


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Term:
    """ctrctl on a fresh pty of `rows`x`cols`; `expect` reads the screen until a pattern shows."""

    def __init__(self, d: DaemonProc, *args: str, rows: int = 30, cols: int = 100) -> None:
        self.master, self.slave = os.openpty()
        set_size(self.master, rows, cols)
        self.proc = subprocess.Popen(["setsid", "-w", "-c", *CTRCTL, "-a", d.address, *args],
                                     stdin=self.slave, stdout=self.slave, stderr=self.slave, env=_env(),
                                     close_fds=True)
        self.seen = b""
        self.pos = 0  # where the last match ended: the next expect looks from there

    def expect(self, pattern: bytes, timeout: float = DEADLINE) -> re.Match[bytes]:
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.seen, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {pattern!r}; screen: {self.seen[-800:]!r}"
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    data = b""
                assert data, f"terminal closed before {pattern!r}; screen: {self.seen[-800:]!r}"
                self.seen += data

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def drain_until_exit(self, timeout: float = DEADLINE) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"ctrctl did not exit; screen: {self.seen[-800:]!r}"
            r, _, _ = select.select([self.master], [], [], 0.1)
            if r:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:
                    pass
        return self.proc.wait()

    def canonical(self) -> bool:
        """Whether the outer terminal is back in cooked mode (ctrctl restored it)."""
        return bool(termios.tcgetattr(self.slave)[3] & termios.ICANON)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


PROMPT = rb"/ # $"


def test_run_it_shell_tty_size_exit_code_and_resize(ctrd: DaemonProc) -> None:  # noqa: F811
    assert shutil.which("setsid")
    t = Term(ctrd, "run", "-it", "--rm", "--network", "none", "busybox", "sh", rows=30, cols=100)
    try:
        t.expect(rb"/ # ")
        assert not t.canonical()  # raw while the session runs
        t.type(b"tty; stty size; echo $((6*7))\r")
        t.expect(rb"/dev/pts/0\r\n30 100\r\n42\r\n")
        set_size(t.master, 41, 120)  # the outer terminal is resized: SIGWINCH → Resize
        deadline = time.monotonic() + DEADLINE
        while True:  # the resize travels ctrctl → ctrd → shim; ask until the shell sees it
            t.type(b"stty size\r")
            # the answer line only, not the echoed command: a SIGWINCH that lands while the line
            # is typed makes the shell redraw it anywhere in it ("stty siz\r/ # stty siz\x1b[Je"),
            # and the answer still follows
            m = t.expect(rb"\r\n(\d+ \d+)\r\n")
            if m.group(1) == b"41 120":
                break
            assert time.monotonic() < deadline, m.group(1)
        t.type(b"exit 3\r")
        assert t.drain_until_exit() == 3
        assert t.canonical()  # restored
    finally:
        t.close()
    assert ctl(ctrd, "ps", "-a", "-q").stdout == b""  # --rm

    # the pty starts at the outer size (docker's ConsoleSize): a program that reads it at once sees it
    t = Term(ctrd, "run", "-it", "--rm", "--network", "none", "busybox", "stty", "size", rows=27, cols=91)
    try:
        assert t.drain_until_exit() == 0
        assert b"27 91\r\n" in t.seen
    finally:
        t.close()


def test_detach_keys_keep_it_running_and_attach_brings_the_prompt_back(ctrd: DaemonProc) -> None:  # noqa: F811
    t = Term(ctrd, "run", "-it", "--name", "shell", "--network", "none", "busybox", "sh")
    try:
        t.expect(rb"/ # ")
        t.type(b"echo before\r")
        t.expect(rb"before\r\n")
        t.type(b"\x10\x11")  # ctrl-p ctrl-q
        assert t.drain_until_exit() == 0  # docker's run: a detach is not a failure
        assert t.canonical()
    finally:
        t.close()
    assert ctrd.c.inspect("shell")["State"]["Running"] is True

    # detach keys that do not parse: 125, the field named, nothing attached
    r = ctl(ctrd, "attach", "--detach-keys", "ctrl-1", "shell", stdin=subprocess.DEVNULL)
    assert r.returncode == 125 and b"detach-keys" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr

    t = Term(ctrd, "attach", "--detach-keys", "ctrl-a,x", "shell")
    try:
        t.type(b"\r")
        t.expect(rb"/ # ")
        t.type(b"echo $((6*7))\r")
        t.expect(rb"\r\n42\r\n")
        t.type(b"\x01x")
        assert t.drain_until_exit() == 1
        assert b"read escape sequence" in t.seen
    finally:
        t.close()
    assert ctrd.c.inspect("shell")["State"]["Running"] is True

    t = Term(ctrd, "attach", "shell")
    try:
        t.type(b"\r")
        t.expect(rb"/ # ")
        t.type(b"exit 4\r")
        assert t.drain_until_exit() == 4
    finally:
        t.close()
    r = ctl(ctrd, "attach", "shell", stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stderr.strip()) == (1, b"Error: You cannot attach to a stopped container, start it first")
    entries = ctrd.c.logs("shell")
    assert {e.stream for e in entries} == {"stdout"}  # a tty has one stream
    assert b"before\r\n" in b"".join(e.data for e in entries)
    assert ctl(ctrd, "rm", "shell").returncode == 0


def test_pipes_through_run_i(ctrd: DaemonProc, tmp_path: Path) -> None:  # noqa: F811
    r = ctl(ctrd, "run", "-i", "--rm", "--network", "none", "busybox", "cat", input=b"hello\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"hello\n", b"")

    r = ctl(ctrd, "run", "-t", "--rm", "--network", "none", "busybox", "tty", stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stdout) == (0, b"/dev/pts/0\r\n"), r.stderr  # -t alone: no stdin, no TTY check
    r = ctl(ctrd, "run", "-it", "--rm", "busybox", "true", stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stderr.strip()) == (1, b"the input device is not a TTY")

    blob = tmp_path / "blob"
    h = hashlib.sha256()
    with open(blob, "wb") as f:
        chunk = os.urandom(1 << 20)
        for i in range(200):
            piece = chunk[i:] + chunk[:i]
            h.update(piece)
            f.write(piece)
    with open(blob, "rb") as f:
        r = ctl(ctrd, "run", "-i", "--rm", "--network", "none", "busybox", "sha256sum", stdin=f, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].decode() == h.hexdigest()

    # a command that cannot run: docker's 127, nothing left behind by --rm
    r = ctl(ctrd, "run", "-i", "--rm", "--network", "none", "busybox", "nosuchcmd", input=b"")
    assert r.returncode == 127 and b"nosuchcmd" in r.stderr, r.stderr
    deadline = time.monotonic() + DEADLINE
    while ctl(ctrd, "ps", "-a", "-q").stdout != b"":  # the daemon's auto-remove follows the exit
        assert time.monotonic() < deadline
        time.sleep(0.05)

    # start -a -i: the stdin of a container created with -i
    r = ctl(ctrd, "create", "-i", "--name", "catter", "--network", "none", "busybox", "cat")
    assert r.returncode == 0, r.stderr
    r = ctl(ctrd, "start", "-a", "-i", "catter", input=b"again\n")
    assert (r.returncode, r.stdout) == (0, b"again\n"), r.stderr
    assert ctl(ctrd, "rm", "catter").returncode == 0

    # sig-proxy (no tty): SIGINT to ctrctl reaches the process
    p = subprocess.Popen([*CTRCTL, "-a", ctrd.address, "run", "-i", "--rm", "--network", "none", "busybox", "sh", "-c",
                          'trap "echo got-int; exit 7" INT; echo ready; while :; do sleep 0.1; done'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_env())
    try:
        assert p.stdout is not None
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(signal.SIGINT)
        assert p.stdout.read() == b"got-int\n"
        assert p.wait(DEADLINE) == 7
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()

    # exit codes and stderr through the stream
    r = ctl(ctrd, "run", "-i", "--rm", "--network", "none", "busybox", "sh", "-c", "cat; echo err >&2; exit 5",
            input=b"in\n")
    assert (r.returncode, r.stdout, r.stderr) == (5, b"in\n", b"err\n")


def test_resize_bad_sizes_are_invalid_argument(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    cid = c.run("busybox", ["sleep", "60"], network_mode="none", tty=True)
    for rows, cols in ((0, 80), (24, 0), (70000, 80), (24, 10**6)):
        with pytest.raises(grpc.RpcError) as ei:
            c.containers.Resize(cpb.ResizeRequest(id=cid, rows=rows, cols=cols), timeout=30)
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    c.containers.Resize(cpb.ResizeRequest(id=cid, rows=50, cols=132), timeout=30)
    c.kill(cid, "KILL")
    c.wait(cid)
    c.remove(cid)


TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"


def _ticks(d: DaemonProc, cid: str) -> int:
    return (d.root / "containers" / cid / f"{cid}-json.log").read_bytes().count(b'"log":"tick')


def test_kill9_daemon_while_attached(ctrd: DaemonProc) -> None:  # noqa: F811
    r = ctl(ctrd, "run", "-d", "-it", "--network", "none", "busybox", "sh", "-c", TICKER)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.decode().strip()
    pid = ctrd.c.inspect(cid)["State"]["Pid"]
    t = Term(ctrd, "attach", cid)
    try:
        t.expect(rb"tick \d+\r\n")
        assert not t.canonical()
        ctrd.kill9()
        rc = t.drain_until_exit()
        assert rc != 0 and t.canonical()  # the terminal is restored when the daemon dies
    finally:
        t.close()
    before = _ticks(ctrd, cid)
    deadline = time.monotonic() + DEADLINE
    while _ticks(ctrd, cid) <= before + 3:  # the shim keeps logging while ctrd is away
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ctrd.start()
    assert ctrd.c.inspect(cid)["State"]["Pid"] == pid
    t = Term(ctrd, "attach", cid)
    try:
        m = t.expect(rb"tick (\d+)\r\n")
        assert int(m.group(1)) >= before  # new output, after the restart
        t.type(b"\x10\x11")
        assert t.drain_until_exit() == 1
    finally:
        t.close()
    ctrd.c.kill(cid, "KILL")
    ctrd.c.wait(cid)
    ctrd.c.remove(cid)


def test_twenty_clients_and_a_stalled_one(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    cid = c.create("busybox", ["sh", "-c", "read go; seq 1 200000; sleep 0.2"], network_mode="none",
                   open_stdin=True)
    c.start(cid)
    stalled_stop = threading.Event()

    def stalled_requests() -> object:
        yield cpb.AttachRequest(open=cpb.AttachOpen(id=cid, stdout=True, stderr=True))
        stalled_stop.wait(DEADLINE)

    # one client that reads nothing after `started` (its gRPC window fills, then the shim cuts it)
    stalled = c.containers.Attach(stalled_requests())
    assert next(stalled).WhichOneof("msg") == "started"

    outs: list[bytes] = [b""] * 20
    codes: list[int] = [-1] * 20
    ready = threading.Barrier(21)

    def reader(i: int) -> None:
        def reqs() -> object:
            yield cpb.AttachRequest(open=cpb.AttachOpen(id=cid, stdout=True, stderr=True, stdin=(i == 0)))
            if i == 0:
                ready.wait(DEADLINE)
                yield cpb.AttachRequest(stdin=b"go\n")
        call = c.containers.Attach(reqs(), timeout=DEADLINE)
        buf = bytearray()
        for resp in call:
            kind = resp.WhichOneof("msg")
            if kind == "started" and i != 0:
                ready.wait(DEADLINE)
            elif kind == "started":
                pass
            elif kind == "output":
                buf += resp.output.data
            elif kind == "exit":
                codes[i] = resp.exit.exit_code
        outs[i] = bytes(buf)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(20)]
    for th in threads:
        th.start()
    ready.wait(DEADLINE)
    for th in threads:
        th.join(DEADLINE)
    want = "".join(f"{n}\n" for n in range(1, 200001)).encode()
    assert codes == [0] * 20
    assert all(o == want for o in outs)
    # the log has it all too, whatever the stalled client did
    assert b"".join(e.data for e in c.logs(cid)) == want
    stalled_stop.set()
    stalled.cancel()
    c.remove(cid)


def test_attach_with_logs_replays_then_goes_live(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    cid = c.run("busybox", ["sh", "-c", "echo early; read line; echo live-$line"], network_mode="none",
                open_stdin=True)
    c.wait_logged(cid, b"early\n")

    def reqs() -> object:
        yield cpb.AttachRequest(open=cpb.AttachOpen(id=cid, stdin=True, stdout=True, stderr=True, logs=True))
        yield cpb.AttachRequest(stdin=b"x\n")

    got = bytearray()
    code = -1
    for resp in c.containers.Attach(reqs(), timeout=DEADLINE):
        if resp.WhichOneof("msg") == "output":
            got += resp.output.data
        elif resp.WhichOneof("msg") == "exit":
            code = resp.exit.exit_code
    assert (bytes(got), code) == (b"early\nlive-x\n", 0)
    c.remove(cid)


def test_vi_and_top_draw_on_the_screen(ctrd: DaemonProc) -> None:  # noqa: F811
    """Full-screen programs on the container's pty: vi clears the screen and draws its empty-line
    tildes and status line, saves and quits; top draws its header and process table, quits on q."""
    t = Term(ctrd, "run", "-it", "--rm", "--network", "none", "busybox", "vi", "/tmp/note", rows=24, cols=80)
    try:
        t.expect(rb"\x1b\[")  # it drives the terminal with escape sequences...
        t.expect(rb"~")  # ...and marks the lines past the end of the (new) file
        t.expect(rb"/tmp/note")  # its status line names the file
        t.type(b"ihello from vi\x1b")
        t.expect(rb"hello from vi")  # what is typed is echoed by vi's own drawing (raw mode inside)
        t.type(b":wq\r")
        assert t.drain_until_exit() == 0
        assert t.canonical()
    finally:
        t.close()

    t = Term(ctrd, "run", "-it", "--rm", "--network", "none", "busybox", "top", rows=24, cols=80)
    try:
        t.expect(rb"Mem:")
        t.expect(rb"PID\s+PPID\s+USER")
        t.expect(rb"\btop\b")  # it lists itself
        t.type(b"q")
        assert t.drain_until_exit() == 0
        assert t.canonical()
    finally:
        t.close()
    assert ctl(ctrd, "ps", "-a", "-q").stdout == b""


def _uss_kib(pid: int) -> int:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        fields[key] = int(rest.split()[0])
    return fields["Private_Clean"] + fields["Private_Dirty"]


def test_clients_that_disconnect_mid_stream_leave_the_shim_flat(ctrd: DaemonProc) -> None:  # noqa: F811
    """20 clients each go away in the middle of a busy output stream (queued bytes unread): the
    container keeps running and the shim's USS stays within a small bound of where it was."""
    c = ctrd.c
    cid = c.run("busybox", ["sh", "-c", "while :; do seq 1 3000; sleep 0.02; done"], network_mode="none")
    (shim,) = ctrd.shim_pids()

    def one_client() -> None:
        stop = threading.Event()

        def reqs() -> object:
            yield cpb.AttachRequest(open=cpb.AttachOpen(id=cid, stdout=True, stderr=True))
            stop.wait(DEADLINE)

        call = c.containers.Attach(reqs(), timeout=DEADLINE)
        got = 0
        for resp in call:
            if resp.WhichOneof("msg") == "output":
                got += len(resp.output.data)
                if got > 64 * 1024:  # mid-stream: more is coming and queued for it
                    break
        call.cancel()
        stop.set()

    for _ in range(5):  # warm-up: the shim's allocator reaches its working size
        one_client()
    before = _uss_kib(shim)
    for _ in range(20):
        one_client()
    # the shim has seen every disconnect once a fresh client is served from the same loop
    one_client()
    after = _uss_kib(shim)
    assert c.inspect(cid)["State"]["Running"]
    assert after - before < 2048, f"shim USS grew {after - before} KiB over 20 disconnects ({before} -> {after})"
    c.remove(cid, force=True)
