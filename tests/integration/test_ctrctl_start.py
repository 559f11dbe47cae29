"""What the real `ctrctl` process imports on its way to a gRPC server (the in-test fake daemon,
a grpc.aio server): the parts of its libraries it never runs stay unimported, and the commands
print the same either way (ctrctl/deferred.py)."""

from __future__ import annotations

import os
import re
import subprocess

from tests.integration.ctrctl_fake import FakeDaemon
from tests.integration.test_ctrctl_cli import CTRCTL

PYTHON_MESSAGE = "google.protobuf.internal.python_message"


def _ctl(sock: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CTRD_ADDRESS"} | env
    return subprocess.run([*CTRCTL, "-a", sock, *args], capture_output=True, text=True, timeout=60,
                          env=environ, stdin=subprocess.DEVNULL)


def _imported(stderr: str) -> set[str]:
    """Module names from -X importtime lines (PYTHONPROFILEIMPORTTIME)."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def _untimed(table: str) -> list[list[str]]:
    """ps's rows without their ages ("Less than a second ago" may become "1 second ago" between
    two runs, which also changes the column widths)."""
    ages = re.compile(r"(Less than a second|About a minute|\d+ (second|minute|hour)s?) ago")
    return [ages.sub("AGO", line).split() for line in table.splitlines()]


def _upb() -> bool:
    from google.protobuf.internal import api_implementation

    return api_implementation.Type() == "upb"


def test_ps_and_run_do_not_import_protobuf_s_pure_python_messages(fake: FakeDaemon) -> None:
    assert _ctl(fake.socket_path, "run", "--name", "one", "busybox", "true").returncode == 0
    plain = _ctl(fake.socket_path, "ps", "-a")
    timed = _ctl(fake.socket_path, "ps", "-a", PYTHONPROFILEIMPORTTIME="1")
    assert plain.returncode == timed.returncode == 0, timed.stderr
    assert _untimed(timed.stdout) == _untimed(plain.stdout) and "one" in plain.stdout
    modules = _imported(timed.stderr)
    assert "ctrd.v1.container_pb2" in modules and "ctrctl.h2grpc" in modules
    if _upb():
        assert PYTHON_MESSAGE not in modules and "google.protobuf.text_format" not in modules
    run = _ctl(fake.socket_path, "run", "--rm", "busybox", "sh", "-c", "echo hi; exit 3", PYTHONPROFILEIMPORTTIME="1")
    assert run.returncode == 3 and run.stdout == "hi\n"
    if _upb():
        assert PYTHON_MESSAGE not in _imported(run.stderr)


def test_the_pure_python_protobuf_backend_gives_the_same_results(fake: FakeDaemon) -> None:
    env = {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    run = _ctl(fake.socket_path, "run", "--rm", "busybox", "sh", "-c", "echo out; exit 4", **env)
    assert (run.returncode, run.stdout) == (4, "out\n"), run.stderr
    assert _ctl(fake.socket_path, "run", "--name", "kept", "busybox", "true", **env).returncode == 0
    python = _ctl(fake.socket_path, "ps", "-a", "--format", "{{.Names}} {{.Status}}", **env)
    default = _ctl(fake.socket_path, "ps", "-a", "--format", "{{.Names}} {{.Status}}")
    assert python.returncode == default.returncode == 0, python.stderr
    assert python.stdout == default.stdout and python.stdout.startswith("kept Exited (0)")
    missing = _ctl(fake.socket_path, "inspect", "nosuch", **env)
    assert (missing.returncode, missing.stderr) == (1, _ctl(fake.socket_path, "inspect", "nosuch").stderr)


def test_version_imports_json_only_to_print_json(fake: FakeDaemon) -> None:
    import json

    plain = _ctl(fake.socket_path, "version", PYTHONPROFILEIMPORTTIME="1")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith("Client:\n") and "\nServer:\n" in plain.stdout
    assert "json" not in _imported(plain.stderr)
    as_json = _ctl(fake.socket_path, "version", "--format", "json", PYTHONPROFILEIMPORTTIME="1")
    assert as_json.returncode == 0 and "json" in _imported(as_json.stderr)
    assert set(json.loads(as_json.stdout)) == {"Client", "Server"}
