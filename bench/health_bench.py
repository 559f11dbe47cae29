"""Containers with a 1 s healthcheck (`CMD true`) beside the same number without, same engine, same
run: what the probes cost the shim (PSS/USS per shim, with vs without) and the daemon (RSS growth per
container, with vs without). ctrd runs the probes in its shim; docker runs them from dockerd (an exec
through containerd's shim), so docker's figure to compare is dockerd's growth."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from bench.context import Context
from bench.ctrd_daemon import CtrdClient
from bench.daemons import wait_until
from bench.dockerapi import DockerAPI
from bench.fleet import SLEEP, shim_mem
from bench.procmem import rss_kb
from bench.rootfs import IMAGE_REF
from ctrd.v1 import container_pb2

INTERVAL_S = 1
PROBE_WINDOW_S = 5.0  # let each container's probes run a few times before memory is read
SETTLE_S = 1.0


def _count(ctx: Context) -> int:
    return max(2, min(ctx.n // 5, 20))


def _measure(ctx: Context, start: Callable[[bool], str], pid_of: Callable[[str], int], healthy: Callable[[str], bool],
             daemon_pid: Callable[[], int], shim_prefix: str) -> dict[str, Any]:
    n = _count(ctx)
    out: dict[str, Any] = {"n": n, "interval_s": INTERVAL_S, "probe_window_s": PROBE_WINDOW_S}
    time.sleep(SETTLE_S)
    rss0 = rss_kb(daemon_pid())
    plain = [start(False) for _ in range(n)]
    time.sleep(SETTLE_S)
    rss1 = rss_kb(daemon_pid())
    checked = [start(True) for _ in range(n)]
    wait_until(lambda: all(healthy(c) for c in checked), 120, 0.1)
    time.sleep(PROBE_WINDOW_S)  # a fixed window on purpose: the probes' steady state is what is measured
    rss2 = rss_kb(daemon_pid())
    out["shim_plain"] = shim_mem([pid_of(c) for c in plain], shim_prefix)
    out["shim_health"] = shim_mem([pid_of(c) for c in checked], shim_prefix)
    out["daemon_rss_growth_kb_plain"] = (rss1 - rss0) / n
    out["daemon_rss_growth_kb_health"] = (rss2 - rss1) / n
    return out


def ctrd_health(ctx: Context) -> dict[str, Any]:
    assert ctx.ctrd is not None
    d = ctx.ctrd
    client = CtrdClient(d.address)
    hc = container_pb2.HealthConfig(test=["CMD", "true"], interval=INTERVAL_S * 1_000_000_000)

    def start(health: bool) -> str:
        spec = container_pb2.ContainerSpec(image=IMAGE_REF, cmd=SLEEP, cmd_set=True, network_mode="none")
        if health:
            spec.healthcheck.CopyFrom(hc)
        cid = str(client.containers.Create(container_pb2.CreateRequest(spec=spec), timeout=60).id)
        client.start(cid)
        return cid

    def healthy(cid: str) -> bool:
        info = json.loads(client.containers.Inspect(container_pb2.InspectRequest(id=cid), timeout=30).json)
        return bool((info["State"].get("Health") or {}).get("Status") == "healthy")

    try:
        return _measure(ctx, start, client.pid_of, healthy, d.pid, "ctrd-shim")
    finally:
        client.close()
        d.remove_all()


def docker_health(ctx: Context) -> dict[str, Any]:
    assert ctx.dockerd is not None
    d = ctx.dockerd
    api = DockerAPI(d.socket)

    def start(health: bool) -> str:
        body: dict[str, Any] = {"Image": IMAGE_REF, "Cmd": SLEEP, "HostConfig": {"NetworkMode": "none"}}
        if health:
            body["Healthcheck"] = {"Test": ["CMD", "true"], "Interval": INTERVAL_S * 1_000_000_000}
        cid = str(api.call("POST", "/containers/create", body)["Id"])
        api.start(cid)
        return cid

    def healthy(cid: str) -> bool:
        return bool((api.call("GET", f"/containers/{cid}/json")["State"].get("Health") or {}).get("Status")
                    == "healthy")

    try:
        return _measure(ctx, start, api.pid_of, healthy, d.pid, "containerd-shim")
    finally:
        api.close()
        d.remove_all()
