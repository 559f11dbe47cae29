"""daemon/faults.py in a real process: CTRD_FAULTS kills at the named point, and only there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from daemon import faults

SCRIPT = """
import sys
from daemon import faults
print("armed", ",".join(sorted(faults.armed())), flush=True)
for name in sys.argv[1:]:
    print("at", name, flush=True)
    faults.point(name)
    if name == "slow.point":
        import time
        time.sleep(5)
print("done", flush=True)
"""


def _run(env_value: str | None, *points: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CTRD_FAULTS"}
    if env_value is not None:
        env["CTRD_FAULTS"] = env_value
    return subprocess.run([sys.executable, "-c", SCRIPT, *points], env=env, capture_output=True, text=True,
                          timeout=30, check=False)


def test_unarmed_points_do_nothing() -> None:
    r = _run(None, "create.validated", "start.after_mount")
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "done"
    r = _run("stop.after_exit", "create.validated", "start.after_mount")
    assert r.returncode == 0, r.stderr


def test_armed_point_kills_with_sigkill_at_that_point() -> None:
    r = _run(" start.after_mount , rm.after_layers_removed", "create.validated", "start.after_mount", "later")
    assert r.returncode == -signal.SIGKILL
    assert r.stdout.splitlines() == ["armed rm.after_layers_removed,start.after_mount",
                                     "at create.validated", "at start.after_mount"]
    assert "fault injected at start.after_mount" in r.stderr


def test_delayed_point_kills_after_the_delay() -> None:
    t0 = time.monotonic()
    r = _run("slow.point@0.3", "slow.point")
    elapsed = time.monotonic() - t0
    assert r.returncode == -signal.SIGKILL
    assert "done" not in r.stdout and "at slow.point" in r.stdout
    assert elapsed < 5  # killed during the 5 s sleep that follows the point


def test_parse_ignores_bad_delays_and_blanks() -> None:
    assert faults._parse("a, ,b@x,c@1.5,d@-2") == {"a": 0.0, "b": 0.0, "c": 1.5, "d": 0.0}


def test_this_process_has_nothing_armed() -> None:
    if os.environ.get("CTRD_FAULTS"):
        pytest.skip("CTRD_FAULTS is set for the test run itself")
    assert faults.armed() == frozenset()
    faults.point("create.validated")  # must return
