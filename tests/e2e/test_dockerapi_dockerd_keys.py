"""The same Docker Engine API calls against Debian's dockerd and against ctrd answer with the same JSON
keys: container inspect and list, version, image list and inspect, network list and inspect."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.dockerd_env import own_bridge, private_dockerd
from tests.e2e.test_dockerapi_clients import call_at, dk, ok

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not shutil.which("dockerd") or not shutil.which("docker"), reason="needs docker.io"),
]
API = "/v1.41"  # Debian 12's dockerd 20.10


class Peer:
    def __init__(self, sock: Path) -> None:
        self.sock = sock

    def get(self, path: str) -> Any:
        status, _, body = call_at(self.sock, "GET", API + path)
        assert status == 200, (path, body[:300])
        return json.loads(body)


def keys(obj: Any, prefix: str = "") -> set[str]:
    """Dotted key paths of the nested objects docker defines (maps keyed by data are not descended)."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f"{prefix}.{k}" if prefix else k
            out.add(path)
            if k not in ("Labels", "Ports", "PortBindings", "Networks", "Containers", "Options", "Data",
                         "ExposedPorts", "Sysctls", "Config", "Env") or path == "Config":
                out |= keys(v, path)
    return out


def same_keys(ours: Any, theirs: Any, what: str, allow: frozenset[str] = frozenset()) -> None:
    a, b = keys(ours) - allow, keys(theirs) - allow
    assert a == b, f"{what}: only ctrd: {sorted(a - b)}; only dockerd: {sorted(b - a)}"


def test_same_keys_as_dockerd(ctrd: DaemonProc, short_tmp: Path) -> None:  # noqa: F811
    base = short_tmp / "dockerd"
    base.mkdir()
    cg = "ctrdk-" + uuid.uuid4().hex[:6]
    tar = short_tmp / "bb.tar"
    ok(dk(ctrd, "run", "--rm", "busybox", "true"))
    ok(dk(ctrd, "save", "-o", str(tar), "busybox"))
    with own_bridge() as (bridge, _gw), private_dockerd(base, bridge, cg) as docker:
        theirs_sock = docker.socket
        assert docker("load", "-i", str(tar)).returncode == 0
        for run in (docker, lambda *a: dk(ctrd, *a)):
            p = run("run", "-d", "--name", "keys", "-p", "80", "-l", "a=b", "busybox", "sleep", "60")
            assert p.returncode == 0, p.stderr
        ours, theirs = Peer(ctrd.exec_root / "docker.sock"), Peer(theirs_sock)
        try:
            same_keys(ours.get("/containers/keys/json"), theirs.get("/containers/keys/json"), "container inspect",
                      # docker 20.10 answers these only on other platforms or with other drivers
                      frozenset({"HostConfig.Annotations"}))
            same_keys(ours.get("/containers/json?all=1")[0], theirs.get("/containers/json?all=1")[0], "container list")
            same_keys(ours.get("/version"), theirs.get("/version"), "version")
            same_keys(ours.get("/images/json")[0], theirs.get("/images/json")[0], "image list")
            same_keys(ours.get("/images/busybox/json"), theirs.get("/images/busybox/json"), "image inspect")
            ob = next(n for n in ours.get("/networks") if n["Name"] == "bridge")
            tb = next(n for n in theirs.get("/networks") if n["Name"] == "bridge")
            same_keys(ob, tb, "network list")
        finally:
            docker("rm", "-f", "keys")
            dk(ctrd, "rm", "-f", "keys")
