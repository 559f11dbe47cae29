"""bench.run: section selection and how a partial run (--only) merges into the previous report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.context import Context
from bench.peers import Peer
from bench.run import assemble, chosen_sections
from bench.sandbox import Sandbox


def test_sections_default_aliases_and_unknown() -> None:
    assert chosen_sections([]) == ["latency", "fleet", "stop", "seccomp", "network", "health", "attach", "exec",
                                    "engines"]
    assert chosen_sections(["network"]) == ["network"]
    assert chosen_sections(["density", "recovery", "stop"]) == ["fleet", "stop"]
    assert chosen_sections(["latency,concurrency"]) == ["latency", "fleet"]
    with pytest.raises(SystemExit, match="unknown section 'speed'"):
        chosen_sections(["speed"])


def ctx(tmp_path: Path) -> Context:
    peers = {"runc": Peer("runc", True, {"runc": "/usr/sbin/runc"}, "runc version 1.1.5", (), "runc")}
    c = Context(work=tmp_path, rootfs=tmp_path / "r", tarball=tmp_path / "t", oci_archive=tmp_path / "o",
                sandbox=Sandbox(tmp_path / "ns"), run_dir=tmp_path / "run", peers=peers, runs=30, warmup=5, n=100, clients=8, stop_runs=10)
    c.notes.append("a note")
    return c


def summary(p50: float) -> dict[str, Any]:
    return {"label": "x", "summary": {"n": 30, "p50": p50, "p90": p50, "mean": p50, "min": p50, "max": p50}}


def test_partial_run_keeps_earlier_sections_and_recomputes_targets(tmp_path: Path) -> None:
    previous = {"latency": {"runc": summary(20.0), "ctrd_api_none": summary(30.0)},
                "fleet": {"ctrd": {"restart_s": 0.5}}, "section_dates": {"latency": "old", "fleet": "old"}}
    machine = {"date": "new", "cpu_model": "AMD EPYC"}
    measured = {"latency": {"runc": summary(20.0), "ctrd_api_none": summary(10.0)}}
    rep = assemble(previous, measured, ctx(tmp_path), ["latency"], {"runs": 30}, machine, None)
    assert rep["section_dates"] == {"latency": "new", "fleet": "old"}
    assert rep["fleet"] == {"ctrd": {"restart_s": 0.5}}
    assert rep["peers"]["runc"]["version"] == "runc version 1.1.5"
    assert rep["notes"] == ["a note"]
    targets = {t["key"]: t for t in rep["targets"]}
    assert targets["api_vs_runc"]["status"] == "met"
    assert targets["restart"]["status"] == "met"
    assert rep["ratios"]["ctrd API (none) / runc run"] == pytest.approx(0.5)
