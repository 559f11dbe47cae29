"""ctrd.libc.fork_lean: a bare fork(2) in a process with one thread (no CPython at-fork work in
the child), os.fork() as soon as there is another thread. Each case runs in a fresh interpreter:
the at-fork hook it registers must not stay in the test process."""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = r"""
import os, sys, threading
from ctrd import libc

if sys.argv[1] == "threaded":
    stop = threading.Event()
    threading.Thread(target=stop.wait, daemon=True).start()
r, w = os.pipe()
os.register_at_fork(after_in_child=lambda: os.write(w, b"hook "))  # runs only in os.fork()'s child
pid = libc.fork_lean()
if pid == 0:
    os.write(w, b"child")
    os._exit(7)
os.close(w)
_, status = os.waitpid(pid, 0)
out = b""
while chunk := os.read(r, 64):
    out += chunk
print(out.decode(), os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize(("threads", "expected"), [("single", "child 7"), ("threaded", "hook child 7")])
def test_fork_lean_skips_the_interpreters_at_fork_work_only_with_one_thread(threads: str, expected: str) -> None:
    res = subprocess.run([sys.executable, "-c", _PROBE, threads], capture_output=True, text=True, timeout=60, check=True)
    assert res.stdout.strip() == expected
