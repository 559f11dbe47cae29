"""The scale section's growth exponents, report rows and plot (no daemon clients imported here)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

# metric key -> (label, unit) ; the plotted and fitted ones
METRICS: dict[str, tuple[str, str]] = {
    "start_all_s": ("time to N running, k clients", "s"),
    "ps_cli_ms": ("`ps -a` CLI p50", "ms"),
    "ps_api_ms": ("list all, API p50", "ms"),
    "inspect_cli_ms": ("`inspect` CLI p50", "ms"),
    "restart_s": ("kill -9 + restart to a full listing", "s"),
    "daemon_rss_growth_kb_per_container": ("daemon RSS growth per container", "KB"),
    "shim_pss_mb": ("shim PSS p50", "MB"),
}


def exponent(points: dict[int, float]) -> float | None:
    """Least-squares slope of log(y) on log(N) over the points with y > 0."""
    xy = [(math.log(n), math.log(y)) for n, y in points.items() if y is not None and y > 0]
    if len(xy) < 2:
        return None
    mx = sum(x for x, _ in xy) / len(xy)
    my = sum(y for _, y in xy) / len(xy)
    sxx = sum((x - mx) ** 2 for x, _ in xy)
    return None if sxx == 0 else sum((x - mx) * (y - my) for x, y in xy) / sxx


def exponents(series: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for name, points in series.items():
        good = {int(n): p for n, p in points.items() if "skipped" not in p}
        out[name] = {m: exponent({n: p[m] for n, p in good.items() if isinstance(p.get(m), (int, float))})
                     for m in METRICS}
    return out


def render_rows(report: dict[str, Any]) -> list[str]:
    sc = report.get("scale")
    if not sc or "series" not in sc:
        return []
    lines = ["| scale: series, N | time to N running (s) | daemon RSS growth / container (KB) | shim PSS (MB) "
             "| ps -a CLI (ms) | list API (ms) | inspect CLI (ms) | restart to full listing (s) "
             "| CLI CPU: ps -a / inspect / version (ms) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def f(v: Any, digits: int = 1) -> str:
        return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "-"

    for name, points in sc["series"].items():
        for n, p in points.items():
            if "skipped" in p:
                lines.append(f"| {name}, {n} | {p['skipped']} | | | | | | | |")
                continue
            lines.append(f"| {name}, {n} | {f(p.get('start_all_s'), 2)} | {f(p.get('daemon_rss_growth_kb_per_container'))} "
                         f"| {f(p.get('shim_pss_mb'), 2)} | {f(p.get('ps_cli_ms'))} | {f(p.get('ps_api_ms'))} "
                         f"| {f(p.get('inspect_cli_ms'))} | {f(p.get('restart_s'), 2)} "
                         f"| {f(p.get('ps_cli_cpu_ms'), 0)} / {f(p.get('inspect_cli_cpu_ms'), 0)} "
                         f"/ {f(p.get('version_cli_cpu_ms'), 0)} |")
    lines += ["", "| growth exponent (log-log slope; 1 = linear) | " + " | ".join(METRICS[m][0] for m in METRICS) + " |",
              "|---|" + "---:|" * len(METRICS)]
    for name, ex in sc.get("exponents", {}).items():
        lines.append(f"| {name} | " + " | ".join(f(ex.get(m), 2) for m in METRICS) + " |")
    return lines


def render_png(report: dict[str, Any], dest: Path) -> bool:
    """One log-log panel per metric, a line per series; False without matplotlib."""
    sc = report.get("scale")
    if not sc or "series" not in sc:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5))
    flat = list(axes.flat)
    for ax, (metric, (label, unit)) in zip(flat, METRICS.items(), strict=False):
        for name, points in sc["series"].items():
            xs = [int(n) for n, p in points.items() if isinstance(p.get(metric), (int, float)) and p[metric] > 0]
            if not xs:
                continue
            ys = [points[str(n)][metric] for n in xs]
            ex = sc.get("exponents", {}).get(name, {}).get(metric)
            ax.plot(xs, ys, marker="o", label=name + (f" (slope {ex:.2f})" if ex is not None else ""))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("N containers")
        ax.set_ylabel(unit)
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=6)
    for ax in flat[len(METRICS):]:
        ax.axis("off")
    m = report.get("machine", {})
    fig.suptitle(f"scale — {m.get('cpu_model', '?')}, {m.get('cores', '?')} cores, {m.get('date', '')}", fontsize=10)
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=100)
    plt.close(fig)
    return True

