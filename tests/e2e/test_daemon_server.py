"""The daemon process itself: socket and pid file, one daemon per root, README's main job."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401

pytestmark = pytest.mark.root


def test_socket_pidfile_and_a_second_daemon_is_refused(ctrd: DaemonProc) -> None:  # noqa: F811
    mode = os.stat(ctrd.address).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
    assert ctrd.proc is not None
    assert (ctrd.exec_root / "ctrd.pid").read_text().strip() == str(ctrd.proc.pid)
    second = subprocess.run(
        [sys.executable, "-m", "daemon.main", "--root", str(ctrd.root), "--exec-root", str(ctrd.base / "run2"),
         "--address", str(ctrd.base / "other.sock"), "--bridge", ctrd.bridge, "--cgroup-parent", ctrd.cgroup_parent],
        capture_output=True, text=True, timeout=60,
    )
    assert second.returncode != 0
    assert f"another ctrd (pid {ctrd.proc.pid}) is already running with root {ctrd.root}" in second.stderr
    ctrd.c.version()  # the first one is undisturbed


def test_ctrctl_run_rm_echo_hello(ctrd: DaemonProc) -> None:  # noqa: F811
    out = subprocess.run(["ctrctl", "-a", ctrd.address, "run", "--rm", "busybox", "echo", "hello"],
                         capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (0, "hello\n"), out.stderr
    assert ctrd.c.list() == []
    out = subprocess.run(["ctrctl", "-a", ctrd.address, "run", "--rm", "busybox", "sh", "-c", "exit 3"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    out = subprocess.run(["ctrctl", "-a", ctrd.address, "run", "--rm", "busybox", "nosuchcmd"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 127 and "nosuchcmd" in out.stderr
