"""N sleeping containers per engine: concurrency (time to get them running with k clients), density
(per-container shim memory, daemon RSS growth) and recovery (kill -9 of the daemon, live-restore start,
until the API lists them all running)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import grpc

from bench.context import Context, output, run_ok
from bench.ctrd_daemon import CtrdClient
from bench.daemons import wait_until
from bench.dockerapi import DockerAPI
from bench.procmem import ancestor_with_comm, children_of, pid_exists, read_procmem, rss_kb, summarize_mem
from bench.rootfs import CONTAINERD_REF, IMAGE_REF

SLEEP = ["sleep", "100000"]
C = TypeVar("C")


def start_concurrently(make_client: Callable[[], C], start_one: Callable[[C, int], str], n: int,
                       clients: int, close: Callable[[C], None]) -> tuple[float, list[str]]:
    """Start n containers with `clients` connected clients in parallel; seconds until all are running."""
    conns = [make_client() for _ in range(clients)]
    groups = [list(range(i, n, clients)) for i in range(clients)]

    def work(k: int) -> list[str]:
        return [start_one(conns[k], i) for i in groups[k]]

    try:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            ids = [cid for part in pool.map(work, range(clients)) for cid in part]
        elapsed = time.perf_counter() - t0
    finally:
        for c in conns:
            close(c)
    return elapsed, ids


def shim_mem(container_pids: Sequence[int], prefix: str) -> dict[str, float]:
    shims = {s for p in container_pids if p > 0 and (s := ancestor_with_comm(p, prefix)) is not None}
    return summarize_mem([read_procmem(s) for s in sorted(shims)])


def _settle() -> None:
    time.sleep(1.0)


class _EngineClient(Protocol):
    def run_rm(self, image: str, cmd: list[str], network: str) -> Any: ...
    def create(self, image: str, cmd: list[str], network: str) -> str: ...
    def start(self, cid: str) -> Any: ...
    def pid_of(self, cid: str) -> int: ...
    def close(self) -> None: ...


def _engine_fleet(ctx: Context, connect: Callable[[], _EngineClient], daemon_pid: Callable[[], int],
                  shim_prefix: str, restart: Callable[[Context, int], tuple[float, float]],
                  remove_all: Callable[[], None]) -> dict[str, Any]:
    """The same measurement for ctrd and docker: each through its own API client."""
    out: dict[str, Any] = {"n": ctx.n, "clients": ctx.clients, "network": "none"}
    warm = connect()
    warm.run_rm(IMAGE_REF, ["true"], "none")
    _settle()
    out["daemon_rss_kb_before"] = rss_kb(daemon_pid())

    def start_one(c: _EngineClient, i: int) -> str:
        cid = c.create(IMAGE_REF, SLEEP, "none")
        c.start(cid)
        return cid

    try:
        out["start_all_s"], ids = start_concurrently(connect, start_one, ctx.n, ctx.clients, lambda c: c.close())
        _settle()
        out["daemon_rss_kb_after"] = rss_kb(daemon_pid())
        out["daemon_rss_growth_kb_per_container"] = (out["daemon_rss_kb_after"] - out["daemon_rss_kb_before"]) / ctx.n
        out["shim"] = shim_mem([warm.pid_of(cid) for cid in ids], shim_prefix)
        warm.close()
        out["restart_api_s"], out["restart_s"] = restart(ctx, ctx.n)
    finally:
        warm.close()
        remove_all()
    return out


def ctrd_fleet(ctx: Context) -> dict[str, Any]:
    assert ctx.ctrd is not None
    d = ctx.ctrd
    return _engine_fleet(ctx, lambda: CtrdClient(d.address), d.pid, "ctrd-shim", ctrd_restart, d.remove_all)


def ctrd_restart(ctx: Context, n: int) -> tuple[float, float]:
    """kill -9, start with --live-restore, poll with a fresh client until n containers list as running.
    Returns (s until the API first answered, s until it listed all n running)."""
    assert ctx.ctrd is not None
    d = ctx.ctrd
    d.kill9()
    t0 = time.perf_counter()
    d.spawn(live_restore=True)
    deadline = t0 + 120
    answered = 0.0
    while time.perf_counter() < deadline:
        client = CtrdClient(d.address)
        try:
            running = len(client.running(timeout=2))
            answered = answered or time.perf_counter() - t0
            if running >= n:
                return answered, time.perf_counter() - t0
        except grpc.RpcError:
            pass
        finally:
            client.close()
        time.sleep(0.005)
    raise RuntimeError(f"ctrd did not list {n} running containers within 120 s after restart")


def docker_fleet(ctx: Context) -> dict[str, Any]:
    assert ctx.dockerd is not None
    d = ctx.dockerd
    return _engine_fleet(ctx, lambda: DockerAPI(d.socket), d.pid, "containerd-shim", docker_restart, d.remove_all)


def docker_restart(ctx: Context, n: int) -> tuple[float, float]:
    assert ctx.dockerd is not None
    d = ctx.dockerd
    assert d.proc is not None
    orphans = children_of(d.proc.pid)
    d.proc.kill()
    d.proc.wait(timeout=10)
    # dockerd's containerd dies with it (parent-death signal) and is reparented to pid 1; until pid 1
    # reaps the zombie, its pid looks alive and a new dockerd waits on its dead socket. An init reaps at
    # once; this machine's pid 1 takes seconds, which is not dockerd's cost: wait it out before timing.
    wait_until(lambda: not any(pid_exists(p) for p in orphans), 120, 0.05)
    t0 = time.perf_counter()
    d.spawn(live_restore=True)  # the poll below is the measurement
    deadline = t0 + 120
    answered = 0.0
    while time.perf_counter() < deadline:
        api = DockerAPI(d.socket, timeout=5)
        try:
            running = len(api.running())
            answered = answered or time.perf_counter() - t0
            if running >= n:
                return answered, time.perf_counter() - t0
        except (OSError, RuntimeError):
            pass
        finally:
            api.close()
        time.sleep(0.005)
    raise RuntimeError(f"dockerd did not list {n} running containers within 120 s after restart")


def containerd_fleet(ctx: Context) -> dict[str, Any]:
    assert ctx.containerd is not None
    c = ctx.containerd
    out: dict[str, Any] = {"n": ctx.n, "clients": ctx.clients, "client": "ctr CLI", "network": "none"}
    out["daemon_rss_kb_before"] = rss_kb(c.pid())

    def start_one(_: None, i: int) -> str:
        cid = f"bench-fleet-{i}"
        run_ok(c.ctr("run", "-d", CONTAINERD_REF, cid, *SLEEP))
        return cid

    try:
        out["start_all_s"], _ids = start_concurrently(lambda: None, start_one, ctx.n, ctx.clients, lambda _: None)
        _settle()
        out["daemon_rss_kb_after"] = rss_kb(c.pid())
        out["daemon_rss_growth_kb_per_container"] = (out["daemon_rss_kb_after"] - out["daemon_rss_kb_before"]) / ctx.n
        pids = [int(line.split()[1]) for line in output(c.ctr("tasks", "ls")).splitlines()[1:] if line.split()]
        out["shim"] = shim_mem(pids, "containerd-shim")
    finally:
        c.remove_all()
    return out

