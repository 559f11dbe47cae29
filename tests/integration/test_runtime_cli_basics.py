"""`ctrd-runtime` verbs that need no container (and no root): spec, features, list, and the error
format a shim reads (one stderr line; a runc-style JSON line in --log)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from runtime import defaults

CLI = [sys.executable, "-m", "runtime.cli"]


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "--root", str(tmp / "root"), "--log", str(tmp / "log"), "--log-format", "json",
                           *args], capture_output=True, text=True, timeout=60)


def test_spec_writes_dockers_defaults_and_never_overwrites(tmp_path: Path) -> None:
    assert run(tmp_path, "spec", "--bundle", str(tmp_path)).returncode == 0
    spec = json.loads((tmp_path / "config.json").read_text())
    assert spec == defaults.default_spec(["sh"])
    p = run(tmp_path, "spec", "--bundle", str(tmp_path))
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [f"ctrd-runtime: {tmp_path}/config.json exists: remove it first"]


def test_features(tmp_path: Path) -> None:
    p = run(tmp_path, "features")
    assert p.returncode == 0
    feats = json.loads(p.stdout)
    assert {"pid", "network", "mount"} <= set(feats["linux"]["namespaces"])
    assert "CAP_SYS_ADMIN" in feats["linux"]["capabilities"]
    assert feats["linux"]["cgroup"]["v1"] and feats["linux"]["cgroup"]["v2"]


def test_errors_are_one_line_and_logged_as_json(tmp_path: Path) -> None:
    p = run(tmp_path, "state", "nosuch")
    assert p.returncode == 1
    assert p.stderr.splitlines() == ["ctrd-runtime: container nosuch does not exist"]
    rec = json.loads((tmp_path / "log").read_text().splitlines()[-1])
    assert rec["level"] == "error" and rec["msg"] == "container nosuch does not exist" and rec["time"].endswith("Z")
    assert rec["code"] == "not_found" and "reason" not in rec  # the taxonomy code, beside the message
    p = run(tmp_path, "exec", "nosuch", "true")
    assert p.returncode == 255  # runc's exit code for a failed exec
    p = run(tmp_path, "delete", "--force", "nosuch")
    assert p.returncode == 0
    p = run(tmp_path, "start", "bad/id")
    assert p.returncode == 1 and "invalid container id" in p.stderr
    assert json.loads((tmp_path / "log").read_text().splitlines()[-1])["code"] == "invalid_argument"


def test_list_of_an_empty_root(tmp_path: Path) -> None:
    p = run(tmp_path, "list", "--format", "json")
    assert (p.returncode, json.loads(p.stdout)) == (0, [])


def test_runc_global_flags_are_accepted(tmp_path: Path) -> None:
    p = subprocess.run([*CLI, "--systemd-cgroup", "--debug", "--root", str(tmp_path), "list", "-q"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == ""


def test_kill_with_an_unknown_signal_is_an_invalid_argument(tmp_path: Path) -> None:
    p = run(tmp_path, "kill", "nosuch", "SIGNOPE")
    assert p.returncode == 1 and p.stderr.splitlines() == ["ctrd-runtime: invalid argument: invalid signal: SIGNOPE"]
    rec = json.loads((tmp_path / "log").read_text().splitlines()[-1])
    assert rec["code"] == "invalid_argument"
