"""The package installs its four commands, and generated code matches the .proto files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cmd", ["ctrd", "ctrctl", "ctrd-shim", "ctrd-runtime"])
def test_console_scripts_print_usage(cmd: str) -> None:
    exe = shutil.which(cmd)
    assert exe, f"{cmd} not installed"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout.lower()


def test_generated_protos_are_fresh() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "protos/generate.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_check_detects_a_stale_proto(tmp_path: Path) -> None:
    # Copy protos/ aside, edit one .proto without regenerating: the check must fail.
    work = tmp_path / "protos"
    shutil.copytree(ROOT / "protos", work)
    proto = work / "ctrd/v1/system.proto"
    proto.write_text(proto.read_text().replace("message VersionRequest {}", "message VersionRequest { string x = 1; }"))
    out = subprocess.run([sys.executable, str(work / "generate.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 1
    assert "stale" in out.stderr


def test_no_python_daemon_shadowing() -> None:
    import daemon

    assert Path(daemon.__file__).resolve().parent == ROOT / "daemon"
