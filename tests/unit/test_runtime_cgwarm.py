"""runtime.cgwarm: the child that keeps the cgroup migration lock warm during a create (the module
says why). Against a plain file standing in for cgroup.procs: no root, no cgroup is touched."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from runtime import cgwarm


def _wait_for(pred: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def test_the_child_migrates_itself_again_and_again_until_stopped(tmp_path: Path) -> None:
    procs = tmp_path / "cgroup.procs"
    procs.write_text("")
    warmer = cgwarm.start(str(procs))
    assert warmer is not None
    try:
        # each no-op migration writes the child's own pid (O_WRONLY without O_TRUNC: the same bytes again)
        assert _wait_for(lambda: procs.read_text() == str(warmer.pid))
        first = os.stat(procs).st_mtime_ns
        assert _wait_for(lambda: os.stat(procs).st_mtime_ns != first), "it wrote only once"
    finally:
        warmer.stop()
    with pytest.raises(ChildProcessError):  # stop() has reaped it
        os.waitpid(warmer.pid, os.WNOHANG)
    warmer.stop()  # idempotent


def test_it_holds_none_of_the_callers_descriptors(tmp_path: Path) -> None:
    """The container's stdio pipes must see EOF when the runtime exits, whatever the child does."""
    r, w = os.pipe()
    warmer = cgwarm.start(str(tmp_path / "procs"))
    assert warmer is not None
    try:
        os.close(w)
        assert _wait_for(lambda: not _fd_in(warmer.pid, w))
        assert os.read(r, 1) == b""  # no other holder of the write end
    finally:
        os.close(r)
        warmer.stop()


def _fd_in(pid: int, fd: int) -> bool:
    return os.path.exists(f"/proc/{pid}/fd/{fd}")


def test_the_child_ends_when_the_caller_is_gone(tmp_path: Path) -> None:
    """The caller's end of the pipe closing (as when it dies) ends the child, no stop() needed."""
    warmer = cgwarm.start(str(tmp_path / "procs"))
    assert warmer is not None
    os.close(warmer._fd)
    warmer._fd = -1
    _, status = os.waitpid(warmer.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_no_cgroup_hierarchy_no_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgwarm, "own_procs_file", lambda: None)
    assert cgwarm.start() is None
