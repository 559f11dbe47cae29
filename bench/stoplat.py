"""Stop latency of a container that handles SIGTERM (it exits at once with its own code)."""

from __future__ import annotations

import select
import subprocess
import time
from typing import Any, Protocol

from bench.context import Context, run_ok, time_ms
from bench.ctrd_daemon import CtrdClient
from bench.dockerapi import DockerAPI
from bench.rootfs import CONTAINERD_REF, IMAGE_REF
from bench.stats import summarize

TRAP = ["sh", "-c", 'trap "exit 0" TERM; while :; do sleep 0.1; done']
# Time for sh to install its trap before the signal comes: a TERM before that kills nothing (pid 1).
ARM_S = 0.5


def _record(samples: list[float]) -> dict[str, Any]:
    return {"summary": summarize(samples).as_dict(), "samples_ms": [round(x, 3) for x in samples]}


class _StopClient(Protocol):
    def create(self, image: str, cmd: list[str], network: str) -> str: ...
    def start(self, cid: str) -> Any: ...
    def stop(self, cid: str, timeout: int) -> Any: ...
    def remove(self, cid: str, force: bool = ...) -> Any: ...
    def close(self) -> None: ...


def _api_stop(ctx: Context, client: _StopClient) -> dict[str, Any]:
    """ctrd and docker alike, each through its own API client (closed at the end)."""
    samples: list[float] = []
    try:
        for _ in range(ctx.stop_runs):
            cid = client.create(IMAGE_REF, TRAP, "none")
            client.start(cid)
            time.sleep(ARM_S)
            samples.append(time_ms(lambda cid=cid: client.stop(cid, 10)))  # type: ignore[misc]
            client.remove(cid, force=True)
    finally:
        client.close()
    return _record(samples)


def ctrd_stop(ctx: Context) -> dict[str, Any]:
    assert ctx.ctrd is not None
    return _api_stop(ctx, CtrdClient(ctx.ctrd.address))


def docker_stop(ctx: Context) -> dict[str, Any]:
    assert ctx.dockerd is not None
    return _api_stop(ctx, DockerAPI(ctx.dockerd.socket))


def containerd_stop(ctx: Context) -> dict[str, Any]:
    """ctr has no 'stop': TERM through the task API, timed until containerd's event stream reports the
    exit (`ctr events`, subscribed before the signal)."""
    assert ctx.containerd is not None
    c = ctx.containerd
    samples: list[float] = []
    for _ in range(ctx.stop_runs):
        cid = ctx.next_id("bench-stop")
        run_ok(c.ctr("run", "-d", CONTAINERD_REF, cid, *TRAP))
        time.sleep(ARM_S)
        events = subprocess.Popen(c.ctr("events"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            time.sleep(0.2)  # subscribed before the signal
            t0 = time.perf_counter()
            run_ok(c.ctr("tasks", "kill", "-s", "SIGTERM", cid))
            assert events.stdout is not None
            deadline = t0 + 30
            while time.perf_counter() < deadline:
                ready, _, _ = select.select([events.stdout], [], [], 1.0)
                line = events.stdout.readline() if ready else ""
                if "/tasks/exit" in line and cid in line:
                    break
            else:
                raise RuntimeError(f"no exit event for {cid} within 30 s")
            samples.append((time.perf_counter() - t0) * 1000.0)
        finally:
            events.kill()
            events.wait(timeout=10)
            if events.stdout is not None:
                events.stdout.close()
        run_ok(c.ctr("tasks", "delete", cid))
        run_ok(c.ctr("containers", "delete", cid))
    return _record(samples)
