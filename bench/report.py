"""Ratios, targets and the markdown table from a run's figures (pure: unit-tested with fake reports)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench import scale_report
from bench.stats import ratio

Path_ = tuple[str, ...]


def dig(report: dict[str, Any], path: Path_) -> float | None:
    """The number at path, or None when any step is missing or the figure was skipped."""
    node: Any = report
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def p50(*keys: str) -> Path_:
    return (*keys, "summary", "p50")


# (name, ours, peer): each ratio is ours / peer; < 1 means ctrd is faster / smaller.
RATIOS: tuple[tuple[str, Path_, Path_], ...] = (
    ("ctrd API (none) / runc run", p50("latency", "ctrd_api_none"), p50("latency", "runc")),
    ("ctrd API (none) / floor", p50("latency", "ctrd_api_none"), p50("latency", "floor")),
    ("ctrd API (none) / ctr run --rm", p50("latency", "ctrd_api_none"), p50("latency", "ctr")),
    ("ctrd API (none) / docker API (none)", p50("latency", "ctrd_api_none"), p50("latency", "docker_api_none")),
    ("ctrd API (bridge) / docker API (bridge)", p50("latency", "ctrd_api_bridge"),
     p50("latency", "docker_api_bridge")),
    ("ctrctl run --rm (none) / docker run --rm (none)", p50("latency", "ctrctl_none"),
     p50("latency", "docker_cli_none")),
    ("ctrctl run --rm (bridge) / docker run --rm (bridge)", p50("latency", "ctrctl_bridge"),
     p50("latency", "docker_cli_bridge")),
    ("docker CLI run --rm (bridge): ctrd's Docker API / dockerd", p50("latency", "docker_cli_ctrd"),
     p50("latency", "docker_cli_bridge")),
    ("docker-py containers.run(remove=True): ctrd's Docker API / dockerd", p50("latency", "dockerpy_ctrd"),
     p50("latency", "dockerpy_docker")),
    ("ctrctl run --rm -v vol:/data / docker run --rm -v vol:/data (none)", p50("latency", "ctrctl_volume"),
     p50("latency", "docker_cli_volume")),
    ("ctrctl run --rm (none) / ctr run --rm", p50("latency", "ctrctl_none"), p50("latency", "ctr")),
    ("ctrd-runtime run / runc run", p50("latency", "ctrd_runtime"), p50("latency", "runc")),
    ("docker run --rm (none), same dockerd: --runtime ctrd / --runtime runc (interleaved)",
     p50("engines", "docker_ctrd"), p50("engines", "docker_runc")),
    ("ctr run --rm, same containerd: --runc-binary ctrd-runtime / runc (interleaved)",
     p50("engines", "ctr_ctrd"), p50("engines", "ctr_runc")),
    ("ctrd-runtime run / runc run (interleaved)", p50("engines", "ctrd_runtime_run"), p50("engines", "runc_run")),
    ("ctrd-runtime --version / runc --version", p50("engines", "ctrd_runtime_version"),
     p50("engines", "runc_version")),
    ("ctrctl version / docker version", p50("engines", "ctrctl_version"), p50("engines", "docker_version")),
    ("shim PSS / containerd-shim-runc-v2 PSS", ("fleet", "ctrd", "shim", "pss_mb_p50"),
     ("fleet", "containerd", "shim", "pss_mb_p50")),
    ("shim RSS / containerd-shim-runc-v2 RSS", ("fleet", "ctrd", "shim", "rss_mb_p50"),
     ("fleet", "containerd", "shim", "rss_mb_p50")),
    ("daemon RSS growth per container: ctrd / dockerd",
     ("fleet", "ctrd", "daemon_rss_growth_kb_per_container"),
     ("fleet", "docker", "daemon_rss_growth_kb_per_container")),
    ("time to N running, k clients: ctrd / docker", ("fleet", "ctrd", "start_all_s"),
     ("fleet", "docker", "start_all_s")),
    ("restart with N running: ctrd / dockerd --live-restore", ("fleet", "ctrd", "restart_s"),
     ("fleet", "docker", "restart_s")),
    ("stop (TERM handled): ctrd / docker", p50("stop", "ctrd"), p50("stop", "docker")),
    ("ctrd API start: default seccomp profile / unconfined", p50("seccomp", "ctrd_api_default"),
     p50("seccomp", "ctrd_api_unconfined")),
    ("dd 4k blocks under docker's profile: runtime library / runc", p50("seccomp", "dd_lib_default"),
     p50("seccomp", "dd_runc_default")),
    ("bridge setup+teardown: firewall chains / none", p50("network", "bridge_firewall"),
     p50("network", "bridge_no_firewall")),
    ("1 GiB through a published port (time): ctrd / docker-proxy", p50("network", "port_download_ctrd"),
     p50("network", "port_download_docker")),
    ("connect + GET through a published port: ctrd / docker-proxy", p50("network", "port_connect_ctrd"),
     p50("network", "port_connect_docker")),
)


def compute_ratios(report: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, ours, peer in RATIOS:
        a, b = dig(report, ours), dig(report, peer)
        if a is not None and b is not None and (r := ratio(a, b)) is not None:
            out[name] = round(r, 3)
    return out


@dataclass(frozen=True, slots=True)
class Target:
    key: str
    text: str
    ours: Path_
    unit: str
    peer: Path_ | None = None   # limit = factor x peer figure ...
    factor: float = 1.0
    limit: float | None = None  # ... or an absolute limit


TARGETS: tuple[Target, ...] = (
    Target("api_vs_runc", "ctrd API run → removed p50 ≤ runc run p50", p50("latency", "ctrd_api_none"), "ms",
           peer=p50("latency", "runc")),
    Target("ctrctl_vs_docker_none", "ctrctl run --rm p50 ≤ 0.5 x docker run --rm p50 (network none)",
           p50("latency", "ctrctl_none"), "ms", peer=p50("latency", "docker_cli_none"), factor=0.5),
    Target("ctrctl_vs_docker_bridge", "ctrctl run --rm p50 ≤ 0.5 x docker run --rm p50 (bridge)",
           p50("latency", "ctrctl_bridge"), "ms", peer=p50("latency", "docker_cli_bridge"), factor=0.5),
    Target("docker_cli_on_ctrd", "docker run --rm p50 against ctrd's Docker API ≤ 0.5 x against dockerd (bridge)",
           p50("latency", "docker_cli_ctrd"), "ms", peer=p50("latency", "docker_cli_bridge"), factor=0.5),
    Target("dockerpy_on_ctrd", "docker-py containers.run(remove=True) p50 on ctrd ≤ 0.3 x on dockerd",
           p50("latency", "dockerpy_ctrd"), "ms", peer=p50("latency", "dockerpy_docker"), factor=0.3),
    Target("shim_pss", "shim PSS ≤ containerd-shim-runc-v2 PSS", ("fleet", "ctrd", "shim", "pss_mb_p50"), "MB",
           peer=("fleet", "containerd", "shim", "pss_mb_p50")),
    Target("rss_growth", "ctrd RSS growth per running container ≤ 200 KB",
           ("fleet", "ctrd", "daemon_rss_growth_kb_per_container"), "KB", limit=200.0),
    Target("restart", "restart with N running containers ≤ 1 s to a full listing", ("fleet", "ctrd", "restart_s"),
           "s", limit=1.0),
    Target("bridge_firewall", "bridge setup+teardown p50 ≤ 10 ms with the firewall rules",
           p50("network", "bridge_firewall"), "ms", limit=10.0),
    Target("bridge_no_firewall", "bridge setup+teardown p50 ≤ 10 ms without firewall rules",
           p50("network", "bridge_no_firewall"), "ms", limit=10.0),
    Target("dns_lookup", "DNS lookup of a container name p50 ≤ 1 ms inside the container",
           p50("network", "dns_lookup"), "ms", limit=1.0),
    # issue 19 (bench.engines: same engine, rows interleaved)
    Target("docker_runtime_ctrd", "docker run --rm --runtime ctrd p50 ≤ 1.2 x --runtime runc (same dockerd)",
           p50("engines", "docker_ctrd"), "ms", peer=p50("engines", "docker_runc"), factor=1.2),
    Target("ctr_runc_binary_ctrd", "ctr run --rm --runc-binary ctrd-runtime p50 ≤ 1.3 x with runc (same containerd)",
           p50("engines", "ctr_ctrd"), "ms", peer=p50("engines", "ctr_runc"), factor=1.3),
    Target("ctrd_runtime_run", "ctrd-runtime run p50 ≤ 1.5 x runc run (bundle)",
           p50("engines", "ctrd_runtime_run"), "ms", peer=p50("engines", "runc_run"), factor=1.5),
    # issue 22
    Target("ctrctl_vs_ctr", "ctrctl run --rm p50 ≤ 0.75 x ctr run --rm p50 (network none)",
           p50("latency", "ctrctl_none"), "ms", peer=p50("latency", "ctr"), factor=0.75),
    Target("ctrctl_vs_docker_035", "ctrctl run --rm p50 ≤ 0.35 x docker run --rm p50 (network none)",
           p50("latency", "ctrctl_none"), "ms", peer=p50("latency", "docker_cli_none"), factor=0.35),
    Target("scale_restart", "N=1000: restart to a full listing ≤ 2 s",
           ("scale", "series", "ctrd, none", "1000", "restart_s"), "s", limit=2.0),
    Target("scale_ps", "N=1000: ctrctl ps -a ≤ 100 ms", ("scale", "series", "ctrd, none", "1000", "ps_cli_ms"),
           "ms", limit=100.0),
    Target("scale_mem", "N=1000: memory per container (shim PSS + daemon RSS growth) ≤ 0.8 x containerd's",
           ("scale", "series", "ctrd, none", "1000", "mem_per_container_mb"), "MB",
           peer=("scale", "series", "containerd, none", "1000", "mem_per_container_mb"), factor=0.8),
)


def evaluate_targets(report: dict[str, Any], targets: Sequence[Target] = TARGETS) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for t in targets:
        ours = dig(report, t.ours)
        limit = t.limit
        if t.peer is not None:
            peer = dig(report, t.peer)
            limit = None if peer is None else peer * t.factor
        row: dict[str, Any] = {"key": t.key, "target": t.text, "unit": t.unit, "ours": ours, "limit": limit}
        if ours is None or limit is None:
            row.update(status="not measured", met=None, by=None, by_pct=None)
        else:
            met = ours <= limit
            row.update(status="met" if met else "missed", met=met, by=round(ours - limit, 3),
                       by_pct=round((ours / limit - 1) * 100, 1) if limit else None)
        out.append(row)
    return out


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _latency_rows(report: dict[str, Any]) -> list[str]:
    lat: dict[str, Any] = report.get("latency", {})
    runc = dig(report, p50("latency", "runc"))
    lines = ["| run → exit → removed (`true`) | p50 ms | p90 ms | n | x runc p50 |", "|---|---:|---:|---:|---:|"]
    for key, row in lat.items():
        if "summary" not in row:
            lines.append(f"| {row.get('label', key)} | skipped: {row.get('skipped', '')} | | | |")
            continue
        s = row["summary"]
        r = ratio(s["p50"], runc) if runc else None
        failed = f" ({row['failures']} failed attempts not counted)" if row.get("failures") else ""
        lines.append(f"| {row['label']}{failed} | {s['p50']:.1f} | {s['p90']:.1f} | {s['n']} | {fmt(r, 2)} |")
    return lines


def _engines_rows(report: dict[str, Any]) -> list[str]:
    lines = ["| engines and CLI start-up (interleaved) | p50 ms | p90 ms | n |", "|---|---:|---:|---:|"]
    for key, row in report.get("engines", {}).items():
        if key == "ratios" or not isinstance(row, dict):
            continue
        if "summary" not in row:
            lines.append(f"| {row.get('label', key)} | skipped: {row.get('skipped', '')} | | |")
            continue
        s = row["summary"]
        failed = f" ({row['failures']} failed attempts not counted)" if row.get("failures") else ""
        lines.append(f"| {row['label']}{failed} | {s['p50']:.1f} | {s['p90']:.1f} | {s['n']} |")
    return lines


def _fleet_rows(report: dict[str, Any]) -> list[str]:
    fleet: dict[str, Any] = report.get("fleet", {})
    lines = ["| engine (N sleeping, network none) | time to N running, k clients (s) | shim PSS MB | shim USS MB"
             " | shim RSS MB | shim threads | daemon RSS before → after MB | growth KB/container"
             " | restart: API answers / all listed running (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for engine, f in fleet.items():
        if "skipped" in f:
            lines.append(f"| {engine} | skipped: {f['skipped']} | | | | | | | |")
            continue
        shim = f.get("shim", {})
        before, after = f.get("daemon_rss_kb_before"), f.get("daemon_rss_kb_after")
        rss = f"{before / 1024:.1f} → {after / 1024:.1f}" if before is not None and after is not None else "-"
        lines.append(
            f"| {engine} (N={f.get('n')}, k={f.get('clients')}) | {fmt(f.get('start_all_s'), 2)} "
            f"| {fmt(shim.get('pss_mb_p50'), 2)} | {fmt(shim.get('uss_mb_p50'), 2)} | {fmt(shim.get('rss_mb_p50'), 2)} "
            f"| {fmt(shim.get('threads_p50'), 0)} | {rss} | {fmt(f.get('daemon_rss_growth_kb_per_container'), 0)} "
            f"| {fmt(f.get('restart_api_s'), 2)} / {fmt(f.get('restart_s'), 2)} |")
    return lines


def _stop_rows(report: dict[str, Any]) -> list[str]:
    lines = ["| stop of a TERM-handling container | p50 ms | p90 ms | n |", "|---|---:|---:|---:|"]
    for engine, row in report.get("stop", {}).items():
        if "summary" not in row:
            lines.append(f"| {engine} | skipped: {row.get('skipped', '')} | | |")
            continue
        s = row["summary"]
        lines.append(f"| {engine} | {s['p50']:.1f} | {s['p90']:.1f} | {s['n']} |")
    return lines


def _attach_rows(report: dict[str, Any]) -> list[str]:
    lines = ["| interactive I/O | `echo x \\| run -i --rm cat` p50 ms | `run --rm true` p50 ms | 1 GiB through cat MiB/s "
             "| CPU s per GiB: daemon / shim / CLI "
             "| shim PSS / USS MB, attached tty containers: N=10 | N=100 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for engine, row in report.get("attach", {}).items():
        if "skipped" in row:
            lines.append(f"| {engine} | skipped: {row['skipped']} | | | | | |")
            continue
        cells = [fmt(dig(row, ("run_i_cat", "summary", "p50"))), fmt(dig(row, ("run_true", "summary", "p50"))),
                 fmt(dig(row, ("cat_1gib", "mib_per_s"))),
                 " / ".join(fmt(dig(row, ("cat_1gib", f"cpu_s_per_gib_{k}")), 1) for k in ("daemon", "shim", "cli")),
                 *(f'{fmt(dig(row, (key, "pss_mb_p50")), 2)} / {fmt(dig(row, (key, "uss_mb_p50")), 2)}'
                   for key in ("attached_tty_shim", "attached_tty_shim_n100"))]
        lines.append(f"| {engine} | " + " | ".join(cells) + " |")
    return lines


def _exec_rows(report: dict[str, Any]) -> list[str]:
    lines = ["| exec | `exec c true` p50 ms | 256 MiB through `exec -i c cat` MiB/s |", "|---|---:|---:|"]
    for engine, row in report.get("exec", {}).items():
        if "skipped" in row:
            lines.append(f"| {engine} | skipped: {row['skipped']} | |")
            continue
        cells = [fmt(dig(row, ("exec_true", "summary", "p50"))), fmt(dig(row, ("exec_i_cat", "mib_per_s")))]
        lines.append(f"| {engine} | " + " | ".join(cells) + " |")
    return lines


def _step_rows(report: dict[str, Any]) -> list[str]:
    names = ("create", "start", "wait", "remove")
    lines = ["| API call breakdown, p50 ms | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for row in report.get("latency", {}).values():
        steps = row.get("steps_p50_ms")
        if steps:
            lines.append(f"| {row['label']} | " + " | ".join(fmt(steps.get(n)) for n in names) + " |")
    return lines


def _profile_rows(report: dict[str, Any], top: int = 10) -> list[str]:
    prof = report.get("profile", {})
    if not prof.get("samples"):
        return []
    lines = [f"| ctrd CPU profile, API run → removed x{prof.get('runs', '?')} (py-spy, {prof['samples']} samples)"
             " | % of samples |", "|---|---:|"]
    lines.extend(f"| process {name} | {pct:.1f} |" for name, pct in prof.get("by_process", []))
    lines.extend(f"| self: {name} | {pct:.1f} |" for name, pct in prof.get("top_self", [])[:top])
    return lines


def _seccomp_rows(report: dict[str, Any]) -> list[str]:
    lines = ["| seccomp: docker's default profile vs none | p50 ms | p90 ms | n |", "|---|---:|---:|---:|"]
    for key, row in report.get("seccomp", {}).items():
        if "summary" not in row:
            lines.append(f"| {row.get('label', key)} | skipped: {row.get('skipped', '')} | | |")
            continue
        s = row["summary"]
        lines.append(f"| {row['label']} | {s['p50']:.1f} | {s['p90']:.1f} | {s['n']} |")
    return lines


def _network_rows(report: dict[str, Any]) -> list[str]:
    lines = ["| network | p50 ms | p90 ms | n |", "|---|---:|---:|---:|"]
    for key, row in report.get("network", {}).items():
        if "summary" not in row:
            lines.append(f"| {row.get('label', key)} | skipped: {row.get('skipped', '')} | | |")
            continue
        s = row["summary"]
        lines.append(f"| {row['label']} | {s['p50']:.3f} | {s['p90']:.3f} | {s['n']} |")
    return lines


def _health_rows(report: dict[str, Any]) -> list[str]:
    lines = ["| engine (1 s healthcheck `CMD true` vs none) | n each | shim PSS MB without → with"
             " | shim USS MB without → with | daemon RSS growth KB/container without → with |",
             "|---|---:|---:|---:|---:|"]
    for engine, h in report.get("health", {}).items():
        if "skipped" in h:
            lines.append(f"| {engine} | skipped: {h['skipped']} | | | |")
            continue
        plain, checked = h.get("shim_plain", {}), h.get("shim_health", {})
        lines.append(
            f"| {engine} | {h.get('n')} | {fmt(plain.get('pss_mb_p50'), 2)} → {fmt(checked.get('pss_mb_p50'), 2)} "
            f"| {fmt(plain.get('uss_mb_p50'), 2)} → {fmt(checked.get('uss_mb_p50'), 2)} "
            f"| {fmt(h.get('daemon_rss_growth_kb_plain'), 0)} → {fmt(h.get('daemon_rss_growth_kb_health'), 0)} |")
    return lines


def _target_rows(report: dict[str, Any]) -> list[str]:
    lines = ["| target | ours | limit | status | by |", "|---|---:|---:|---|---:|"]
    for t in report.get("targets", []):
        by = "" if t["by"] is None else f"{t['by']:+.2f} {t['unit']}"
        if t["by_pct"] is not None:
            by += f" ({t['by_pct']:+.0f} %)"
        lines.append(f"| {t['target']} | {fmt(t['ours'], 2)} {t['unit']} | {fmt(t['limit'], 2)} {t['unit']} "
                     f"| {t['status']} | {by} |")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    m = report.get("machine", {})
    out = [f"# ctrd benchmark — {m.get('date', '?')}", "",
           f"Machine: {m.get('cpu_model', '?')}, {m.get('cores', '?')} cores, {m.get('mem_total_mb', '?')} MB, "
           f"kernel {m.get('kernel', '?')}, {m.get('os', '?')}, cgroups {m.get('cgroups', '?')}, "
           f"Python {m.get('python', '?')} ({m.get('python_executable', '?')}); "
           f"load average at start {fmt(m.get('loadavg_at_start'), 2)}, at end {fmt(m.get('loadavg_at_end'), 2)}; "
           f"CPU pressure (PSI some avg60) at start {fmt(m.get('cpu_pressure_avg60_at_start'))} %, "
           f"at end {fmt(m.get('cpu_pressure_avg60_at_end'))} %.",
           ""]
    peers = report.get("peers", {})
    if peers:
        out.append("Peers: " + "; ".join(
            f"{name} {p['version'] or '(present)'}" if p["present"] else f"{name} missing"
            for name, p in peers.items()) + ".")
        out.append("")
    cfg = report.get("config", {})
    if cfg:
        out.append(f"Runs: {cfg.get('runs')} per latency row after {cfg.get('warmup')} warm-up; "
                   f"N={cfg.get('n')} containers, k={cfg.get('clients')} clients; {cfg.get('stop_runs')} stops.")
        out.append("")
    for section in (_target_rows, _latency_rows, _engines_rows, _step_rows, _fleet_rows, scale_report.render_rows, _stop_rows,
                    _seccomp_rows, _network_rows, _health_rows, _attach_rows, _exec_rows, _profile_rows):
        rows = section(report)
        if len(rows) > 2:
            out.extend([*rows, ""])
    ratios = report.get("ratios", {})
    if ratios:
        out.extend(["| ratio (ours / peer; < 1 = ctrd ahead) | value |", "|---|---:|"])
        out.extend(f"| {k} | {v:.2f} |" for k, v in ratios.items())
        out.append("")
    notes = report.get("notes", [])
    if notes:
        out.append("Notes:")
        out.extend(f"- {n}" for n in notes)
        out.append("")
    return "\n".join(out)
