"""Debian's own docker CLI (docker.io 20.10, API 1.41) against ctrd's Docker Engine API socket,
beside the v28 CLI tested in test_dockerapi_clients: an older client that negotiates a lower API
version must get the shapes it reads (run in the foreground and detached, ps, logs, exec, inspect,
stop, rm, images, networks, volumes, events)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_dockerapi_clients import ok, sock

DEBIAN_DOCKER = "/usr/bin/docker"
pytestmark = [pytest.mark.root, pytest.mark.skipif(not os.path.exists(DEBIAN_DOCKER),
                                                    reason="Debian's docker.io CLI not installed")]


def dk(d: DaemonProc, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_HOST"] = f"unix://{sock(d)}"
    env["DOCKER_CONFIG"] = str(d.base / "docker-config-2010")
    return subprocess.run([DEBIAN_DOCKER, *args], capture_output=True, text=True, timeout=60, env=env,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)


def test_debian_docker_cli_2010_verbs(ctrd: DaemonProc) -> None:  # noqa: F811
    v = ok(dk(ctrd, "version", "--format", "{{.Client.Version}} {{.Client.APIVersion}} {{.Server.APIVersion}}")).split()
    assert v[0].startswith("20.10") and v[1] == "1.41" and v[2] == "1.47"
    since = str(int(time.time()) - 1)
    r = dk(ctrd, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    assert ok(dk(ctrd, "run", "-i", "--rm", "busybox", "cat", stdin="piped\n")) == "piped\n"
    cid = ok(dk(ctrd, "run", "-d", "--name", "old", "busybox", "sh", "-c", "echo hello; exec sleep 60")).strip()
    try:
        assert ok(dk(ctrd, "ps", "--format", "{{.Names}} {{.Image}}")) == "old busybox\n"
        deadline = time.monotonic() + 30
        while ok(dk(ctrd, "logs", "old")) != "hello\n":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert ok(dk(ctrd, "exec", "old", "sh", "-c", "echo in-$((2+3))")) == "in-5\n"
        assert ok(dk(ctrd, "inspect", "-f", "{{.State.Running}} {{.Config.Image}}", "old")) == "true busybox\n"
        ok(dk(ctrd, "stop", "-t", "1", "old"))
        assert ok(dk(ctrd, "inspect", "-f", "{{.State.Status}}", cid)).strip() == "exited"
    finally:
        dk(ctrd, "rm", "-f", "old")
    assert "busybox" in ok(dk(ctrd, "images", "--format", "{{.Repository}}")).split()
    ok(dk(ctrd, "network", "create", "n2010"))
    ok(dk(ctrd, "volume", "create", "v2010"))
    try:
        assert "n2010" in ok(dk(ctrd, "network", "ls", "--format", "{{.Name}}")).split()
        assert ok(dk(ctrd, "run", "--rm", "--network", "n2010", "-v", "v2010:/d", "busybox",
                     "sh", "-c", "echo kept > /d/f && cat /d/f")) == "kept\n"
    finally:
        dk(ctrd, "volume", "rm", "v2010")
        dk(ctrd, "network", "rm", "n2010")
    events = ok(dk(ctrd, "events", "--since", since, "--until", str(int(time.time()) + 1),
                   "--filter", "container=old", "--format", "{{.Action}}")).split()
    assert "start" in events and "die" in events and "destroy" in events
