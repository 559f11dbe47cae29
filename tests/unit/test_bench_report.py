"""bench.report: ratios, targets (met / missed by how much / not measured), markdown rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.report import compute_ratios, dig, evaluate_targets, render_markdown


def lat(p50: float, p90: float | None = None, n: int = 30) -> dict[str, Any]:
    return {"label": "x", "summary": {"n": n, "p50": p50, "p90": p90 or p50 * 1.2, "mean": p50, "min": p50,
                                      "max": p50}, "samples_ms": [p50] * 3}


def fake_report() -> dict[str, Any]:
    return {
        "machine": {"date": "2026-11-27T23:00:00Z", "cpu_model": "AMD EPYC", "cores": 2, "kernel": "6.1"},
        "peers": {"runc": {"present": True, "version": "runc version 1.1.5", "paths": {}},
                  "docker": {"present": False, "version": "", "paths": {}}},
        "latency": {
            "floor": lat(3.0), "runc": lat(20.0), "ctr": lat(120.0),
            "docker_cli_none": lat(300.0), "docker_cli_bridge": lat(340.0),
            "ctrd_api_none": lat(25.0), "ctrctl_none": lat(100.0), "ctrctl_bridge": lat(200.0),
            "ctrd_runtime": {"label": "ctrd-runtime run (bundle)", "skipped": "not working yet"},
        },
        "fleet": {
            "ctrd": {"n": 100, "clients": 8, "shim": {"pss_mb_p50": 2.5, "rss_mb_p50": 9.0, "threads_p50": 1},
                     "daemon_rss_kb_before": 40000, "daemon_rss_kb_after": 55000,
                     "daemon_rss_growth_kb_per_container": 150.0, "restart_s": 1.5, "start_all_s": 4.0},
            "containerd": {"n": 100, "clients": 8, "shim": {"pss_mb_p50": 2.9, "rss_mb_p50": 13.0}},
            "docker": {"skipped": "dockerd not running"},
        },
        "stop": {"ctrd": lat(110.0), "docker": {"skipped": "dockerd not running"}},
    }


def test_dig_returns_numbers_only() -> None:
    r = fake_report()
    assert dig(r, ("latency", "runc", "summary", "p50")) == 20.0
    assert dig(r, ("latency", "ctrd_runtime", "summary", "p50")) is None
    assert dig(r, ("nothing",)) is None
    assert dig({"a": True}, ("a",)) is None


def test_ratios_only_where_both_sides_were_measured() -> None:
    ratios = compute_ratios(fake_report())
    assert ratios["ctrd API (none) / runc run"] == pytest.approx(1.25)
    assert ratios["ctrctl run --rm (none) / docker run --rm (none)"] == pytest.approx(0.333)
    assert ratios["shim PSS / containerd-shim-runc-v2 PSS"] == pytest.approx(0.862)
    assert "ctrd-runtime run / runc run" not in ratios
    assert "restart with N running: ctrd / dockerd --live-restore" not in ratios


def test_targets_say_met_missed_by_how_much_and_not_measured() -> None:
    rows = {t["key"]: t for t in evaluate_targets(fake_report())}
    api = rows["api_vs_runc"]
    assert api["status"] == "missed" and api["met"] is False
    assert api["by"] == pytest.approx(5.0) and api["by_pct"] == pytest.approx(25.0)
    half = rows["ctrctl_vs_docker_none"]
    assert half["limit"] == pytest.approx(150.0) and half["status"] == "met"
    assert half["by"] == pytest.approx(-50.0)
    assert rows["ctrctl_vs_docker_bridge"]["status"] == "missed"       # 200 > 0.5 x 340
    assert rows["shim_pss"]["status"] == "met"
    assert rows["rss_growth"]["status"] == "met" and rows["rss_growth"]["limit"] == 200.0
    assert rows["restart"]["status"] == "missed" and rows["restart"]["by"] == pytest.approx(0.5)
    report = fake_report()
    del report["fleet"]
    rows = {t["key"]: t for t in evaluate_targets(report)}
    assert rows["restart"]["status"] == "not measured" and rows["restart"]["by"] is None


def test_markdown_has_every_table_and_the_skips() -> None:
    report = fake_report()
    report["targets"] = evaluate_targets(report)
    report["ratios"] = compute_ratios(report)
    report["notes"] = ["dockerd could not be used here"]
    md = render_markdown(report)
    assert md.startswith("# ctrd benchmark — 2026-11-27T23:00:00Z")
    assert "| ctrd API run → removed p50 ≤ runc run p50 | 25.00 ms | 20.00 ms | missed | +5.00 ms (+25 %) |" in md
    assert "skipped: not working yet" in md
    assert "| containerd (N=100, k=8) |" in md
    assert "39.1 → 53.7" in md                                          # daemon RSS before → after, MB
    assert "docker | skipped: dockerd not running" in md
    assert "docker missing" in md
    assert "- dockerd could not be used here" in md
    for line in md.splitlines():
        if line.startswith("|"):
            assert line.endswith("|")


def test_chart_renders_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from bench.chart import render_latency_png

    dest = tmp_path / "latency.png"
    assert render_latency_png(fake_report(), dest)
    assert dest.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not render_latency_png({"latency": {}}, tmp_path / "none.png")


def test_markdown_breakdown_and_profile_tables() -> None:
    report = fake_report()
    report["latency"]["ctrd_api_none"]["steps_p50_ms"] = {"create": 6.5, "start": 40.0, "wait": 10.0, "remove": 7.25}
    report["profile"] = {"samples": 200, "runs": 30, "by_process": [["ctrd", 70.0], ["shimd.launcher", 30.0]],
                         "top_self": [["ctrd: fsync_dir (daemon/atomic.py)", 13.7]]}
    md = render_markdown(report)
    assert "| API call breakdown, p50 ms | create | start | wait | remove |" in md
    assert "| x | 6.5 | 40.0 | 10.0 | 7.2 |" in md
    assert "(py-spy, 200 samples)" in md
    assert "| self: ctrd: fsync_dir (daemon/atomic.py) | 13.7 |" in md
    assert "| process shimd.launcher | 30.0 |" in md


def test_network_rows_targets_and_the_firewall_ratio() -> None:
    report = fake_report()
    report["network"] = {"bridge_firewall": lat(6.0), "bridge_no_firewall": lat(4.0), "dns_lookup": lat(1.5)}
    rows = {t["key"]: t for t in evaluate_targets(report)}
    assert rows["bridge_firewall"]["status"] == "met" and rows["bridge_firewall"]["limit"] == 10.0
    assert rows["dns_lookup"]["status"] == "missed" and rows["dns_lookup"]["by"] == pytest.approx(0.5)
    assert compute_ratios(report)["bridge setup+teardown: firewall chains / none"] == pytest.approx(1.5)
    report["network"]["dns_lookup"] = {"label": "dns", "skipped": "ctrd daemon not available: x"}
    report["targets"] = evaluate_targets(report)
    md = render_markdown(report)
    assert "| network | p50 ms | p90 ms | n |" in md and "| x | 6.000 | 7.200 | 30 |" in md
    assert "| dns | skipped: ctrd daemon not available: x | | |" in md
    assert "| DNS lookup of a container name p50 ≤ 1 ms inside the container | - ms | 1.00 ms | not measured |" in md


def test_attach_rows_ctrd_beside_docker_and_skips() -> None:
    rep: dict[str, Any] = {"attach": {
        "ctrd": {"run_i_cat": {"summary": {"p50": 150.0}}, "run_true": {"summary": {"p50": 140.0}},
                 "cat_1gib": {"mib_per_s": 300.5, "cpu_s_per_gib_daemon": 7.04, "cpu_s_per_gib_shim": 9.2,
                              "cpu_s_per_gib_cli": 6.33},
                 "attached_tty_shim": {"pss_mb_p50": 2.4, "uss_mb_p50": 0.61},
                 "attached_tty_shim_n100": {"pss_mb_p50": 1.9, "uss_mb_p50": 0.6}},
        "docker": {"skipped": "dockerd not running"},
    }}
    md = render_markdown(rep)
    assert "| ctrd | 150.0 | 140.0 | 300.5 | 7.0 / 9.2 / 6.3 | 2.40 / 0.61 | 1.90 / 0.60 |" in md
    assert "| docker | skipped: dockerd not running | | | | | |\n" in md


def test_exec_rows_ctrd_beside_docker_and_skips() -> None:
    rep: dict[str, Any] = {"exec": {
        "ctrd": {"exec_true": {"summary": {"p50": 120.0}}, "exec_i_cat": {"mib_per_s": 210.5}},
        "docker": {"skipped": "dockerd not running"},
    }}
    md = render_markdown(rep)
    assert "| ctrd | 120.0 | 210.5 |" in md
    assert "| docker | skipped: dockerd not running | |" in md
def test_health_rows() -> None:
    from bench.report import _health_rows

    rep = {"health": {"ctrd": {"n": 4, "shim_plain": {"pss_mb_p50": 2.25, "uss_mb_p50": 2.0},
                               "shim_health": {"pss_mb_p50": 2.5, "uss_mb_p50": 2.25},
                               "daemon_rss_growth_kb_plain": 16.0, "daemon_rss_growth_kb_health": 20.0},
                      "docker": {"skipped": "dockerd not running"}}}
    rows = _health_rows(rep)
    assert rows[2] == "| ctrd | 4 | 2.25 → 2.50 | 2.00 → 2.25 | 16 → 20 |"
    assert rows[3].startswith("| docker | skipped: dockerd not running")
