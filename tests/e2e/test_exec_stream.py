"""`ctrctl exec` against a real ctrd: output streams while the command runs, -it under a real pty
(Python's pty module: /dev/pts/N inside, resize follows, the exit code), -i from a pipe (a 10 MiB
sha256 round trip, a script on stdin), -d, docker's 126/127, exec inspect after the exit, docker's
refusals and the exec events."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from ctrd import errdefs
from ctrd.v1 import container_pb2 as pb
from ctrd.v1 import system_pb2 as spb
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_ctrctl_e2e import CTRCTL, ctl

pytestmark = pytest.mark.root


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CTRD_ADDRESS"}


def _running(d: DaemonProc, name: str) -> str:
    r = ctl(d, "run", "-d", "--name", name, "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_exec_output_streams_before_the_command_ends(ctrd: DaemonProc) -> None:  # noqa: F811
    _running(ctrd, "s1")
    p = subprocess.Popen([*CTRCTL, "-a", ctrd.address, "exec", "s1", "sh", "-c",
                          "echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second; exit 4"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    try:
        assert p.stdout is not None
        assert p.stdout.readline() == b"first\n"  # the command still runs: it waits for /tmp/go
        assert p.poll() is None
        assert ctl(ctrd, "exec", "s1", "touch", "/tmp/go").returncode == 0
        out, err = p.communicate(timeout=60)
        assert (p.returncode, out, err) == (4, b"second\n", b"")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert ctl(ctrd, "rm", "-f", "s1").returncode == 0


def _read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, (marker, bytes(seen))
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            assert chunk, (marker, bytes(seen))
            seen += chunk
    out = bytes(seen)
    del seen[:]
    return out


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def test_exec_it_under_a_real_terminal(ctrd: DaemonProc) -> None:  # noqa: F811
    _running(ctrd, "t1")
    master, slave = pty.openpty()
    _set_size(slave, 33, 101)

    # `setsid -w -c` makes the pty ctrctl's controlling terminal (and passes its exit code on): no
    # preexec_fn, whose fork of this grpc-holding test process let grpc's fork handlers print into the pty
    p = subprocess.Popen(["setsid", "-w", "-c", *CTRCTL, "-a", ctrd.address, "exec", "-it", "t1", "sh"], stdin=slave,
                         stdout=slave, stderr=slave, env=_env(), close_fds=True)
    os.close(slave)
    seen = bytearray()
    try:
        os.write(master, b"tty; stty size; echo $((6*7))\n")
        out = _read_until(master, b"42\r\n", seen)
        assert b"/dev/pts/" in out and b"33 101\r\n" in out, out
        _set_size(master, 44, 120)  # the kernel sends SIGWINCH to ctrctl, the foreground process
        # the resize travels ctrctl -> ctrd -> shim: the shell waits until its terminal has the size
        os.write(master, b"while [ \"$(stty size)\" != '44 120' ]; do sleep 0.05; done; echo re$((1+1))sized\n")
        _read_until(master, b"re2sized\r\n", seen)
        os.write(master, b"exit 3\n")
        assert p.wait(timeout=60) == 3
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    # not a terminal: docker's refusal, exit 1
    r = subprocess.run([*CTRCTL, "-a", ctrd.address, "exec", "-it", "t1", "sh"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, env=_env(), timeout=60)
    assert (r.returncode, r.stderr.strip()) == (1, "the input device is not a TTY")
    assert ctl(ctrd, "rm", "-f", "t1").returncode == 0


def test_exec_i_from_a_pipe(ctrd: DaemonProc, tmp_path: Path) -> None:  # noqa: F811
    _running(ctrd, "p1")
    data = os.urandom(10 * 1024 * 1024)
    r = subprocess.run([*CTRCTL, "-a", ctrd.address, "exec", "-i", "p1", "sha256sum"], input=data,
                       capture_output=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    script = tmp_path / "script.sh"
    script.write_text("echo one\nx=$((20+22))\necho $x\nexit 9\n")
    with open(script, "rb") as f:
        r = subprocess.run([*CTRCTL, "-a", ctrd.address, "exec", "-i", "p1", "sh"], stdin=f,
                           capture_output=True, env=_env(), timeout=60)
    assert (r.returncode, r.stdout) == (9, b"one\n42\n"), r.stderr
    # a reader that stops for a while (beyond the shim's 1 s grace for attached clients) loses
    # nothing: an exec's output waits for its reader (the process blocks), as docker's
    p = subprocess.Popen([*CTRCTL, "-a", ctrd.address, "exec", "p1", "head", "-c", "40000000", "/dev/zero"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    assert p.stdout is not None
    first = p.stdout.read(1 << 20)
    time.sleep(3)  # the slow reader itself, not a wait for a condition
    rest = p.stdout.read()
    assert p.wait(timeout=120) == 0 and len(first) + len(rest) == 40000000, p.stderr.read() if p.stderr else ""
    assert ctl(ctrd, "rm", "-f", "p1").returncode == 0


def test_exec_detached_failures_inspect_and_events(ctrd: DaemonProc) -> None:  # noqa: F811
    since = time.time()
    cid = _running(ctrd, "d1")
    r = ctl(ctrd, "exec", "-d", "d1", "sh", "-c", "echo hi > /tmp/d")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    r = ctl(ctrd, "exec", "d1", "sh", "-c", "while [ ! -e /tmp/d ]; do sleep 0.05; done; cat /tmp/d")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr

    r = ctl(ctrd, "exec", "d1", "nosuchcmd")
    assert (r.returncode, r.stderr) == (127, "OCI runtime exec failed: exec failed: unable to start container process: "
                                             'exec: "nosuchcmd": executable file not found in $PATH: unknown\n')
    r = ctl(ctrd, "exec", "d1", "/etc")
    assert r.returncode == 126, r.stderr
    r = ctl(ctrd, "exec", "--detach-keys", "ctrl-zz", "d1", "true")
    assert r.returncode == 125 and "detach-keys" in r.stderr, r.stderr

    c = ctrd.c
    eid = c.call(c.containers, "ExecCreate", pb.ExecCreateRequest(id="d1", args=["sh", "-c", "exit 5"],
                                                               attach_stdout=True)).exec_id
    info = json.loads(c.call(c.containers, "ExecInspect", pb.ExecInspectRequest(exec_id=eid)).json)
    assert (info["Running"], info["ExitCode"], info["ContainerID"]) == (False, None, cid)
    assert info["ProcessConfig"]["entrypoint"] == "sh" and info["ProcessConfig"]["arguments"] == ["-c", "exit 5"]
    c.call(c.containers, "ExecStart", pb.ExecStartRequest(exec_id=eid))
    with pytest.raises(errdefs.FailedPrecondition, match="Exec command"):
        c.call(c.containers, "ExecStart", pb.ExecStartRequest(exec_id=eid))
    r = ctl(ctrd, "events", "--since", str(since), "--until", str(time.time() + 30), "-f", "event=exec_die",
            "--format", "{{json .}}", timeout=60)
    dies = [json.loads(x) for x in r.stdout.splitlines()]
    assert any(e["Actor"]["Attributes"].get("execID") == eid and e["Actor"]["Attributes"]["exitCode"] == "5"
               for e in dies), r.stdout
    info = json.loads(c.call(c.containers, "ExecInspect", pb.ExecInspectRequest(exec_id=eid)).json)
    assert (info["Running"], info["ExitCode"], info["Pid"] > 0, info["CanRemove"]) == (False, 5, True, True)
    r = ctl(ctrd, "events", "--since", str(since), "--until", str(time.time()), "--format", "{{.Action}}")
    actions = r.stdout.split()
    assert {"exec_create", "exec_start", "exec_die"} <= set(actions), actions

    # Resize of a detached tty exec through the API: the shell ends once its terminal has the size
    since = time.time()
    script = 'while [ "$(stty size)" != "50 70" ]; do sleep 0.05; done'
    tid = c.call(c.containers, "ExecCreate", pb.ExecCreateRequest(id="d1", args=["sh", "-c", script], tty=True,
                                                                  console_rows=24, console_cols=80)).exec_id
    with pytest.raises(errdefs.FailedPrecondition, match="not running"):
        c.call(c.containers, "Resize", pb.ResizeRequest(exec_id=tid, rows=50, cols=70))
    c.call(c.containers, "ExecStart", pb.ExecStartRequest(exec_id=tid))
    with pytest.raises(errdefs.InvalidArgument, match="size"):
        c.call(c.containers, "Resize", pb.ResizeRequest(exec_id=tid, rows=0, cols=70))
    c.call(c.containers, "Resize", pb.ResizeRequest(exec_id=tid, rows=50, cols=70))
    stream = c.system.Events(spb.EventsRequest(since=since, filters={"event": "exec_die"}), timeout=60)
    try:
        code = next(ev.attributes["exitCode"] for ev in stream if ev.attributes.get("execID") == tid)
    finally:
        stream.cancel()
    assert code == "0"
    with pytest.raises(errdefs.NotFound, match="No such exec instance: nope"):
        c.call(c.containers, "ExecInspect", pb.ExecInspectRequest(exec_id="nope"))
    assert ctl(ctrd, "pause", "d1").returncode == 0
    r = ctl(ctrd, "exec", "d1", "true")
    assert r.returncode != 0 and f"Container {cid} is paused" in r.stderr, r.stderr
    assert ctl(ctrd, "unpause", "d1").returncode == 0
    assert ctl(ctrd, "stop", "-t", "0", "d1").returncode == 0
    r = ctl(ctrd, "exec", "d1", "true")
    assert r.returncode != 0 and f"Container {cid} is not running" in r.stderr, r.stderr
    assert ctl(ctrd, "rm", "d1").returncode == 0
    with pytest.raises(errdefs.NotFound):  # the container's execs went with it
        c.call(c.containers, "ExecInspect", pb.ExecInspectRequest(exec_id=eid))
