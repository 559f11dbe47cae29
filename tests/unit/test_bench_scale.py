"""bench.scale_report: growth exponents from log-log fits, the scale rows of the report, the issue 22
targets on scale figures."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench.report import evaluate_targets, render_markdown
from bench.scale_report import exponent, exponents, render_rows


def test_exponent_of_power_laws() -> None:
    assert exponent({100: 1.0, 300: 3.0, 1000: 10.0}) == pytest.approx(1.0)
    assert exponent({100: 1.0, 300: 9.0, 1000: 100.0}) == pytest.approx(2.0)
    assert exponent({100: 5.0, 300: 5.0, 1000: 5.0}) == pytest.approx(0.0)
    noisy = {100: 2.0 * 100 ** 1.1, 300: 2.0 * 300 ** 1.1 * 1.05, 1000: 2.0 * 1000 ** 1.1 * 0.97}
    assert exponent(noisy) == pytest.approx(1.1, abs=0.05)


def test_exponent_needs_two_positive_points() -> None:
    assert exponent({100: 1.0}) is None
    assert exponent({100: 1.0, 300: 0.0}) is None
    assert exponent({}) is None


def _point(n: int, start: float, ps: float) -> dict[str, Any]:
    return {"n": n, "start_all_s": start, "ps_cli_ms": ps, "restart_s": 0.001 * n,
            "daemon_rss_growth_kb_per_container": 16.0, "shim_pss_mb": 2.3, "mem_per_container_mb": 2.3 + 16 / 1024}


def scale_report() -> dict[str, Any]:
    return {"machine": {"date": "2026-12-06T06:00:00Z"}, "scale": {"ns": [100, 1000], "series": {
        "ctrd, none": {"100": _point(100, 2.0, 50.0), "1000": _point(1000, 20.0, 90.0)},
        "containerd, none": {"100": _point(100, 4.0, 40.0), "1000": {**_point(1000, 40.0, 60.0),
                                                                     "mem_per_container_mb": 3.5}},
        "docker, none": {"100": _point(100, 8.0, 120.0), "1000": {"skipped": "docker only to N=300"}},
    }}}


def test_exponents_per_series_and_metric() -> None:
    ex = exponents(scale_report()["scale"]["series"])
    assert ex["ctrd, none"]["start_all_s"] == pytest.approx(1.0)
    assert ex["ctrd, none"]["ps_cli_ms"] == pytest.approx(math.log(90 / 50) / math.log(10))
    assert ex["ctrd, none"]["shim_pss_mb"] == pytest.approx(0.0)
    assert ex["docker, none"]["start_all_s"] is None  # one measured point


def test_rows_and_targets() -> None:
    rep = scale_report()
    rep["scale"]["exponents"] = exponents(rep["scale"]["series"])
    rows = render_rows(rep)
    assert any(r.startswith("| ctrd, none, 1000 | 20.00 |") for r in rows)
    assert any("docker only to N=300" in r for r in rows)
    assert any(r.startswith("| ctrd, none | 1.00 |") for r in rows)
    targets = {t["key"]: t for t in evaluate_targets(rep)}
    assert targets["scale_ps"]["status"] == "met" and targets["scale_ps"]["ours"] == 90.0
    assert targets["scale_restart"]["status"] == "met"
    assert targets["scale_mem"]["limit"] == pytest.approx(0.8 * 3.5)
    assert targets["scale_mem"]["status"] == "met"
    assert "| scale: series, N |" in render_markdown(rep)


def test_merge_keeps_other_points_and_refits() -> None:
    from bench.scale import merge

    first = scale_report()["scale"]
    first["exponents"] = exponents(first["series"])
    second = {"ns": [300], "series": {"ctrd, bridge": {"300": _point(300, 6.0, 60.0)},
                                      "ctrd, none": {"1000": _point(1000, 10.0, 80.0)}}}
    merged = merge(first, second)
    assert list(merged["series"]["ctrd, none"]) == ["100", "1000"]
    assert merged["series"]["ctrd, none"]["1000"]["start_all_s"] == 10.0  # replaced
    assert merged["series"]["containerd, none"] == first["series"]["containerd, none"]  # kept
    assert merged["ns"] == [100, 300, 1000]
    assert merged["exponents"]["ctrd, none"]["start_all_s"] == pytest.approx(math.log10(5))
    assert merge(None, second) is second
