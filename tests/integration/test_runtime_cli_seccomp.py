"""`ctrd-runtime features` reports seccomp support in runc's shape, and the same vocabulary as runc
(less SCMP_ACT_NOTIFY, which ctrd-runtime refuses with a clear error)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import pytest

from runtime import seccomp


def features(argv: list[str]) -> dict[str, Any]:
    p = subprocess.run([*argv, "features"], capture_output=True, text=True, timeout=60, check=True)
    out: dict[str, Any] = json.loads(p.stdout)["linux"]["seccomp"]
    return out


def test_features_report_seccomp() -> None:
    ours = features([sys.executable, "-m", "runtime.cli"])
    assert ours["enabled"] is True
    assert "SCMP_ACT_ERRNO" in ours["actions"] and "SCMP_ACT_NOTIFY" not in ours["actions"]
    assert "SCMP_ARCH_X86_64" in ours["archs"] and "SCMP_ARCH_X32" in ours["archs"]
    assert ours["knownFlags"] == ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                  "SECCOMP_FILTER_FLAG_TSYNC"]
    assert ours == seccomp.features()


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_features_match_runc() -> None:
    ours = features([sys.executable, "-m", "runtime.cli"])
    runc = features(["runc"])
    assert set(ours["actions"]) == set(runc["actions"]) - {"SCMP_ACT_NOTIFY"}
    assert ours["operators"] == runc["operators"]
    assert set(runc["archs"]) <= set(ours["archs"])


def test_flags_become_seccomp_filter_flag_bits() -> None:
    p = seccomp.parse({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
        "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]})
    assert p.flag_bits == (1 << 1) | (1 << 2)  # TSYNC: accepted, no effect (one thread), as runc
    assert seccomp.prepare(p, None).flags == p.flag_bits
