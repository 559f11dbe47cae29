"""Run a test's body in a new interpreter.

A test that forks a shim's runtime helper must not fork the pytest process once other tests have
started grpc's threads: the child can abort in grpc's fork handlers ("Other threads are currently
calling into gRPC, skipping fork() handlers"; seen in a CI run as "the runtime helper died without
an answer"). A shim never has grpc loaded; these tests run where it is not either."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def in_fresh_interpreter(module: str, func: str, *args: str, timeout: float = 120) -> None:
    """Call `module.func(*args)` (string arguments) in a new interpreter; fail with its stderr."""
    code = f"import {module} as m; m.{func}(*{args!r})"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "protos")])}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=timeout, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
