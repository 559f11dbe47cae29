"""latency.png: the latency distributions side by side (matplotlib, the optional `bench` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def render_latency_png(report: dict[str, Any], dest: Path) -> bool:
    """Write a horizontal box plot (log scale) of every measured latency row; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [(r["label"], r["samples_ms"]) for r in report.get("latency", {}).values() if "samples_ms" in r]
    rows += [(f"stop (TERM handled): {engine}", r["samples_ms"])
             for engine, r in report.get("stop", {}).items() if "samples_ms" in r]
    if not rows:
        return False
    rows.reverse()  # matplotlib draws the first box at the bottom
    fig, ax = plt.subplots(figsize=(11, 0.5 * len(rows) + 1.8))
    # 'orientation' replaced 'vert' in matplotlib 3.10; the extra allows >= 3.7.
    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    direction: dict[str, Any] = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
    ax.boxplot([r[1] for r in rows], whis=(5, 95), showfliers=True, flierprops={"markersize": 2}, **direction)
    ax.set_yticks(range(1, len(rows) + 1), [r[0] for r in rows], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds (log scale); box = p25-p75, line = p50, whiskers = p5-p95")
    m = report.get("machine", {})
    ax.set_title(f"run → exit → removed (`true`) — {m.get('cpu_model', '?')}, {m.get('cores', '?')} cores, "
                 f"{m.get('date', '')}", fontsize=9)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=110)
    plt.close(fig)
    return True
