"""The daemon's --seccomp-profile and --no-new-privileges: defaults for every container that does
not say otherwise, checked inside containers of a real ctrd started with them (issue 17)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_fixtures import DaemonProc, start_daemon, teardown
from tests.e2e.test_ctrctl_e2e import ctl

pytestmark = pytest.mark.root

# Allows everything but mkdir: its effect is visible with busybox alone.
NO_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
PROBE = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /tmp/d && echo mkdir=ok || echo mkdir=refused"


@pytest.fixture
def daemon_with(short_tmp: Path, request: pytest.FixtureRequest) -> Iterator[DaemonProc]:
    profile = short_tmp / "no-mkdir.json"
    profile.write_text(json.dumps(NO_MKDIR))
    flags = [str(profile) if a == "PROFILE" else a for a in request.param]
    d = start_daemon(short_tmp, *flags)
    try:
        yield d
    finally:
        problems = teardown(d)
        print(f"--- ctrd log ({d.log_path}) ---\n{d.log()}")
    if problems:
        pytest.fail("ctrd left things behind: " + "; ".join(problems))


def probe(d: DaemonProc, *flags: str) -> dict[str, str]:
    r = ctl(d, "run", "--rm", "--network", "none", *flags, "busybox", "sh", "-c", PROBE)
    assert r.returncode == 0, r.stdout + r.stderr
    out: dict[str, str] = {}
    for line in r.stdout.splitlines():
        key, _, value = line.replace("=", ":", 1).partition(":")
        out[key.strip()] = value.strip()
    return out


@pytest.mark.parametrize("daemon_with", [("--seccomp-profile", "PROFILE", "--no-new-privileges")], indirect=True)
def test_daemon_profile_and_no_new_privileges_are_container_defaults(daemon_with: DaemonProc) -> None:
    d = daemon_with
    assert probe(d) == {"Seccomp": "2", "NoNewPrivs": "1", "mkdir": "refused"}
    # the container's own options win over the daemon's
    assert probe(d, "--security-opt", "no-new-privileges=false") == {"Seccomp": "2", "NoNewPrivs": "0", "mkdir": "refused"}
    assert probe(d, "--security-opt", "seccomp=builtin") == {"Seccomp": "2", "NoNewPrivs": "1", "mkdir": "ok"}
    assert probe(d, "--security-opt", "seccomp=unconfined") == {"Seccomp": "0", "NoNewPrivs": "1", "mkdir": "ok"}


@pytest.mark.parametrize("daemon_with", [("--seccomp-profile", "unconfined")], indirect=True)
def test_daemon_unconfined_by_default(daemon_with: DaemonProc) -> None:
    d = daemon_with
    assert probe(d) == {"Seccomp": "0", "NoNewPrivs": "0", "mkdir": "ok"}
    assert probe(d, "--security-opt", "seccomp=builtin")["Seccomp"] == "2"
