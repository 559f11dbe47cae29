"""bench.context.run_quiet: the timed runs of CLI rows wait on the exit itself (a pidfd), with a
timeout that kills what overruns it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bench.context import run_quiet


def test_exit_status_is_returned() -> None:
    assert run_quiet(["sh", "-c", "exit 3"]) == 3
    assert run_quiet(["true"]) == 0


def test_a_command_over_its_timeout_is_killed_and_reaped(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    with pytest.raises(subprocess.TimeoutExpired):
        run_quiet(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"], timeout=0.5)
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):  # killed and waited for: not even a zombie
        os.kill(pid, 0)
