"""`scale`: how each engine's costs grow with N sleeping containers (N = 100, 300, 1000).

Per engine and N (network none; bridge too for N ≤ 300 where the engine has one): time to get N
running with k concurrent connected clients, daemon RSS growth per container, shim PSS, `ps -a` and
`inspect` latency (the CLI a person types, fork to exit, and for ctrd and docker the API call), then
kill -9 of the daemon and a restart (ctrd and dockerd with --live-restore; containerd's shims
outlive it anyway) timed until the API lists all N running. Docker only up to N = 300, and not at all
once its runs have used up the time budget. Then, per series and metric, the growth exponent: the
slope of log(metric) on log(N) by least squares (1 = linear; per-container metrics that stay flat
have ~0). `results/scale.png` plots each curve on log-log axes (matplotlib, the `bench` extra); the fits, table and plot are in
bench/scale_report.py.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.context import Context, output, run_ok, run_quiet
from bench.ctrd_daemon import CtrdClient
from bench.dockerapi import DockerAPI
from bench.fleet import SLEEP, ctrd_restart, docker_restart, shim_mem, start_concurrently
from bench.procmem import rss_kb
from bench.rootfs import CONTAINERD_REF, IMAGE_REF
from bench.scale_report import exponents
from ctrd.v1 import container_pb2

NS = (100, 300, 1000)
NS_QUICK = (10, 30)
BRIDGE_MAX = 300
DOCKER_MAX = 300
DOCKER_BUDGET_S = 600.0  # docker's whole share of the section
CLI_RUNS = 7
def _p50_ms(fn: Callable[[], object], runs: int = CLI_RUNS) -> float:
    fn()  # warm
    xs = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    return statistics.median(xs)


def _cpu_ms(fn: Callable[[], object], runs: int = CLI_RUNS) -> float:
    """p50 of a CLI's own CPU time (user + system, from the children's rusage): unlike the wall
    time it does not grow with the machine's load (several benches share these 2 cores)."""
    fn()
    xs = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        fn()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        xs.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    return statistics.median(xs)


def _cli(argv: Sequence[str], env: dict[str, str] | None = None) -> Callable[[], object]:
    def run() -> None:
        code = run_quiet(argv, timeout=120, env=env)
        if code != 0:
            raise RuntimeError(f"{argv[0]} exited {code}")
    return run


def _settle() -> None:
    time.sleep(1.0)


def ctrd_point(ctx: Context, n: int, network: str, ctrctl: str) -> dict[str, Any]:
    assert ctx.ctrd is not None
    d = ctx.ctrd
    out: dict[str, Any] = {"n": n, "network": network, "clients": ctx.clients}
    warm = CtrdClient(d.address)
    try:
        warm.run_rm(IMAGE_REF, ["true"], network)
        _settle()
        before = rss_kb(d.pid())

        def start_one(c: CtrdClient, i: int) -> str:
            cid = c.create(IMAGE_REF, SLEEP, network)
            c.start(cid)
            return cid

        out["start_all_s"], ids = start_concurrently(lambda: CtrdClient(d.address), start_one, n, ctx.clients,
                                                     lambda c: c.close())
        _settle()
        out["daemon_rss_kb_before"], out["daemon_rss_kb_after"] = before, rss_kb(d.pid())
        out["daemon_rss_growth_kb_per_container"] = (out["daemon_rss_kb_after"] - before) / n
        out["shim"] = shim_mem([warm.pid_of(cid) for cid in ids], "ctrd-shim")
        out["shim_pss_mb"] = out["shim"].get("pss_mb_p50")
        out["ps_api_ms"] = _p50_ms(lambda: warm.containers.List(container_pb2.ListRequest(all=True), timeout=60))
        out["ps_cli_ms"] = _p50_ms(_cli([ctrctl, "-a", d.address, "ps", "-a"]))
        out["inspect_cli_ms"] = _p50_ms(_cli([ctrctl, "-a", d.address, "inspect", ids[n // 2]]))
        out["ps_cli_cpu_ms"] = _cpu_ms(_cli([ctrctl, "-a", d.address, "ps", "-a"]))
        out["inspect_cli_cpu_ms"] = _cpu_ms(_cli([ctrctl, "-a", d.address, "inspect", ids[n // 2]]))
        out["version_cli_cpu_ms"] = _cpu_ms(_cli([ctrctl, "-a", d.address, "version"]))
        warm.close()
        out["restart_api_s"], out["restart_s"] = ctrd_restart(ctx, n)
    finally:
        warm.close()
        d.remove_all()
    return out


def docker_point(ctx: Context, n: int, network: str) -> dict[str, Any]:
    assert ctx.dockerd is not None
    d = ctx.dockerd
    out: dict[str, Any] = {"n": n, "network": network, "clients": ctx.clients}
    warm = DockerAPI(d.socket)
    try:
        warm.run_rm(IMAGE_REF, ["true"], network)
        _settle()
        before = rss_kb(d.pid())

        def start_one(c: DockerAPI, i: int) -> str:
            cid = c.create(IMAGE_REF, SLEEP, network)
            c.start(cid)
            return cid

        out["start_all_s"], ids = start_concurrently(lambda: DockerAPI(d.socket), start_one, n, ctx.clients,
                                                     lambda c: c.close())
        _settle()
        out["daemon_rss_kb_before"], out["daemon_rss_kb_after"] = before, rss_kb(d.pid())
        out["daemon_rss_growth_kb_per_container"] = (out["daemon_rss_kb_after"] - before) / n
        out["shim"] = shim_mem([warm.pid_of(cid) for cid in ids], "containerd-shim")
        out["shim_pss_mb"] = out["shim"].get("pss_mb_p50")
        out["ps_api_ms"] = _p50_ms(lambda: warm.call("GET", "/containers/json?all=1"))
        out["ps_cli_ms"] = _p50_ms(_cli(d.docker("ps", "-a"), env=d.env))
        out["inspect_cli_ms"] = _p50_ms(_cli(d.docker("inspect", ids[n // 2]), env=d.env))
        warm.close()
        out["restart_api_s"], out["restart_s"] = docker_restart(ctx, n)
    finally:
        warm.close()
        d.remove_all()
    return out


def containerd_point(ctx: Context, n: int) -> dict[str, Any]:
    assert ctx.containerd is not None
    c = ctx.containerd
    out: dict[str, Any] = {"n": n, "network": "none", "clients": ctx.clients, "client": "ctr CLI"}
    before = rss_kb(c.pid())

    def start_one(_: None, i: int) -> str:
        cid = f"bench-scale-{n}-{i}"
        run_ok(c.ctr("run", "-d", CONTAINERD_REF, cid, *SLEEP))
        return cid

    try:
        out["start_all_s"], ids = start_concurrently(lambda: None, start_one, n, ctx.clients, lambda _: None)
        _settle()
        out["daemon_rss_kb_before"], out["daemon_rss_kb_after"] = before, rss_kb(c.pid())
        out["daemon_rss_growth_kb_per_container"] = (out["daemon_rss_kb_after"] - before) / n
        pids = [int(line.split()[1]) for line in output(c.ctr("tasks", "ls")).splitlines()[1:] if line.split()]
        out["shim"] = shim_mem(pids, "containerd-shim")
        out["shim_pss_mb"] = out["shim"].get("pss_mb_p50")
        out["ps_cli_ms"] = _p50_ms(_cli(c.ctr("containers", "ls")))
        out["ps_cli_cpu_ms"] = _cpu_ms(_cli(c.ctr("containers", "ls")))
        out["tasks_ls_cli_ms"] = _p50_ms(_cli(c.ctr("tasks", "ls")))
        out["inspect_cli_ms"] = _p50_ms(_cli(c.ctr("containers", "info", ids[n // 2])))
        out["inspect_cli_cpu_ms"] = _cpu_ms(_cli(c.ctr("containers", "info", ids[n // 2])))
        out["restart_api_s"], out["restart_s"] = containerd_restart(ctx, n)
    finally:
        c.remove_all()
    return out


def containerd_restart(ctx: Context, n: int) -> tuple[float, float]:
    """kill -9 containerd, start it again on the same state; until `ctr tasks ls` shows n RUNNING."""
    assert ctx.containerd is not None
    c = ctx.containerd
    c.kill9()
    t0 = time.perf_counter()
    c.spawn()
    answered = 0.0
    deadline = t0 + 120
    while time.perf_counter() < deadline:
        r = subprocess.run(c.ctr("tasks", "ls"), capture_output=True, text=True, check=False, timeout=60)
        if r.returncode == 0:
            answered = answered or time.perf_counter() - t0
            if sum(1 for line in r.stdout.splitlines()[1:] if "RUNNING" in line) >= n:
                return answered, time.perf_counter() - t0
        time.sleep(0.005)
    raise RuntimeError(f"containerd did not list {n} running tasks within 120 s after restart")


def measure(ctx: Context, ns: Sequence[int], ctrctl: str,
            guard: Callable[[Context, str, Callable[[Context], dict[str, Any]]], dict[str, Any]],
            only: Sequence[str] = ()) -> dict[str, Any]:
    """`only`: run just the series whose name contains one of these (e.g. "bridge", "ctrd, none")."""
    series: dict[str, dict[str, dict[str, Any]]] = {}

    def point(name: str, n: int, fn: Callable[[Context], dict[str, Any]]) -> None:
        if only and not any(o in name for o in only):
            return
        p = series.setdefault(name, {})[str(n)] = guard(ctx, f"scale {name} N={n}", fn)
        if isinstance(p.get("shim_pss_mb"), (int, float)) and "daemon_rss_growth_kb_per_container" in p:
            p["mem_per_container_mb"] = p["shim_pss_mb"] + p["daemon_rss_growth_kb_per_container"] / 1024

    docker_used = 0.0
    for n in ns:
        if ctx.ctrd is not None:
            point("ctrd, none", n, lambda c, n=n: ctrd_point(c, n, "none", ctrctl))
            if n <= BRIDGE_MAX:
                point("ctrd, bridge", n, lambda c, n=n: ctrd_point(c, n, "bridge", ctrctl))
        if ctx.containerd is not None:
            point("containerd, none", n, lambda c, n=n: containerd_point(c, n))
        if ctx.dockerd is not None and n <= DOCKER_MAX:
            for net in ("none", "bridge"):
                if only and not any(o in f"docker, {net}" for o in only):
                    continue
                if docker_used > DOCKER_BUDGET_S:
                    series.setdefault(f"docker, {net}", {})[str(n)] = {
                        "skipped": f"docker's {DOCKER_BUDGET_S:.0f} s budget used up"}
                    continue
                t = time.perf_counter()
                point(f"docker, {net}", n, lambda c, n=n, net=net: docker_point(c, n, net))
                docker_used += time.perf_counter() - t
    return {"ns": list(ns), "clients": ctx.clients, "series": series, "exponents": exponents(series)}


def merge(previous: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The new points over the previous run's (same series and N replaced, others kept), exponents
    fitted again: a second run for some N or series completes the curves of the first."""
    if not previous or "series" not in previous:
        return new
    series = {name: dict(points) for name, points in previous["series"].items()}
    for name, points in new["series"].items():
        series.setdefault(name, {}).update(points)
    for name in series:
        series[name] = dict(sorted(series[name].items(), key=lambda kv: int(kv[0])))
    ns = sorted({int(n) for points in series.values() for n in points})
    return {**new, "ns": ns, "series": series, "exponents": exponents(series),
            "runs": [*previous.get("runs", [previous.get("ns")]), new.get("ns")]}
