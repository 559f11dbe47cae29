"""The pre-warmed launcher's answers: a shim whose child did the request parsing and state-dir
preparation itself (the lean path and the general one), and each error the daemon relies on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ctrd import errdefs
from daemon.shims.client import ShimClient
from daemon.shims.launcher import ShimHandle, ShimLauncher
from shimd.launch.fork import _lean_id


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.02)


async def _shutdown(h: ShimHandle) -> None:
    c = await ShimClient.connect(h.address)
    try:
        await c.shutdown()
    finally:
        await c.close()
    _wait_gone(h.pid)
    if Path(f"/proc/{h.pid}").exists():
        os.kill(h.pid, signal.SIGKILL)


def test_lean_id_takes_only_the_exact_shape_the_launcher_client_writes() -> None:
    assert _lean_id(json.dumps({"id": "abc-1.x_2"}).encode() + b"\n") == "abc-1.x_2"
    assert _lean_id(b'{"id": "a\\"b"}\n') is None
    assert _lean_id(b'{"id": 5}\n') is None
    assert _lean_id(b'{"id": "../x"}\n') is None
    assert _lean_id(b'{"id":"abc"}\n') is None  # other spacing: the general (json) path


@pytest.mark.parametrize("root_name", ["er", 'e"r'])
def test_launch_answers_a_working_shim_then_already_exists(short_tmp: Path, root_name: str) -> None:
    async def run() -> None:
        exec_root = short_tmp / root_name  # a quote in the path takes the general path
        launcher = ShimLauncher(exec_root)
        await launcher.start()
        h = None
        try:
            for cid in ("first", "second"):  # the first creates exec_root/shims, the second finds it
                h = await launcher.launch(cid)
                assert h.state_dir == exec_root / "shims" / cid
                assert h.address == f"unix://{exec_root / 'shims' / cid / 'shim.sock'}"
                c = await ShimClient.connect(h.address)
                try:
                    assert (await c.connect()).shim_pid == h.pid
                finally:
                    await c.close()
                with pytest.raises(errdefs.AlreadyExists):
                    await launcher.launch(cid)
                await _shutdown(h)
                h = None
        finally:
            if h is not None:
                await _shutdown(h)
            await launcher.close()

    asyncio.run(run())


def test_launch_errors_keep_their_codes(short_tmp: Path) -> None:
    async def run() -> None:
        launcher = ShimLauncher(short_tmp / "er")
        await launcher.start()
        try:
            with pytest.raises(errdefs.InvalidArgument, match="not a valid container id"):
                await launcher.launch("../escape")
            with pytest.raises(errdefs.InvalidArgument, match="longer than"):
                await launcher.launch("x" * 120)
            proc = launcher._proc
            assert proc is not None and proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(b"not json\n")
            await proc.stdin.drain()
            answer = json.loads(await proc.stdout.readline())
            assert answer["code"] == "invalid_argument"
            assert "launcher request" in answer["message"]
        finally:
            await launcher.close()

    asyncio.run(run())


@pytest.mark.parametrize("when", ["before-ready", "after-a-launch"])
def test_a_launcher_whose_daemon_is_gone_ends_quietly(short_tmp: Path, when: str) -> None:
    """kill -9 of the daemon closes the launcher's answer pipe: the launcher's next answer finds
    no reader, and it ends with status 0 and nothing on stderr (which is the daemon's log)."""
    exec_root = short_tmp / "lg"
    proc = subprocess.Popen([sys.executable, "-m", "shimd.launch.launcher", "--exec-root", str(exec_root)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    shim_pid = 0
    try:
        if when == "after-a-launch":
            assert proc.stdout.readline() == b'{"ready": true}\n'
            proc.stdin.write(json.dumps({"id": "gone"}).encode() + b"\n")
            proc.stdin.flush()
            shim_pid = int(json.loads(proc.stdout.readline())["pid"])
        proc.stdout.close()  # the daemon's end of the answers: gone
        if when == "after-a-launch":
            proc.stdin.write(json.dumps({"id": "gone2"}).encode() + b"\n")  # its answer has no reader
            proc.stdin.flush()
        assert proc.wait(60) == 0
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for sid in ("gone", "gone2"):
            pid_file = exec_root / "shims" / sid / "shim.pid"
            pid = int(pid_file.read_text()) if pid_file.exists() else 0
            for p in {pid, shim_pid if sid == "gone" else 0} - {0}:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
                _wait_gone(p)
