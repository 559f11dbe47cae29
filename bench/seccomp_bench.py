"""Section `seccomp`: what docker's default profile costs, against no profile, in the same run.

Rows (p50/p90 over ctx.runs after ctx.warmup):
- ctrd gRPC API create+start+wait+rm (network none) with the default profile, and with
  `--security-opt seccomp=unconfined` — the cost at container start, end to end;
- the runtime library in-process (Container.create/start/wait/delete) on one `runc spec` bundle
  with docker's profile (resolved for the bundle's capabilities) and without it;
- `runc run` of the very same two bundles;
- a syscall-heavy workload, `dd if=/dev/zero of=/dev/null bs=4k count=262144` (two syscalls per
  block), under the library and under runc, with and without the profile: the filter's per-syscall
  cost (fewer runs: each takes a good fraction of a second).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.context import Context, run_ok
from bench.ctrd_daemon import CtrdClient, describe_error
from bench.rootfs import IMAGE_REF, build_bundle
from bench.stats import summarize
from ctrd.v1 import container_pb2
from daemon.security import seccomp as dsec
from daemon.security import seccomp_default
from runtime import Container, Stdio

DD = ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=4k", "count=262144"]
LABELS: dict[str, str] = {
    "ctrd_api_default": "ctrd API create+start+wait+rm, default profile",
    "ctrd_api_unconfined": "ctrd API create+start+wait+rm, seccomp=unconfined",
    "runtime_lib_default": "runtime library create+start+wait+delete, docker's profile",
    "runtime_lib_unconfined": "runtime library create+start+wait+delete, no profile",
    "runc_default": "runc run (same bundle), docker's profile",
    "runc_unconfined": "runc run (same bundle), no profile",
    "dd_lib_default": "dd 256Ki x 4k, runtime library, docker's profile",
    "dd_lib_unconfined": "dd 256Ki x 4k, runtime library, no profile",
    "dd_runc_default": "dd 256Ki x 4k, runc, docker's profile",
    "dd_runc_unconfined": "dd 256Ki x 4k, runc, no profile",
}


def _bundle(ctx: Context, name: str, args: list[str], profile: bool) -> Path:
    bundle = build_bundle(ctx.path("runc", "runc"), ctx.rootfs, ctx.work / f"seccomp-{name}", args)
    cfg_path = bundle / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["linux"].pop("seccomp", None)
    if profile:
        cfg["linux"]["seccomp"] = dsec.resolve(seccomp_default.profile(), cfg["process"]["capabilities"]["bounding"])
    # under ctrd's bench cgroup parent: the bench's teardown removes that tree
    cfg["linux"]["cgroupsPath"] = f"/{ctx.cgroup_names()[2]}/seccomp-{name}"
    cfg_path.write_text(json.dumps(cfg))
    return bundle


def _ctrd_run(client: CtrdClient, security_opt: list[str]) -> None:
    spec = container_pb2.ContainerSpec(image=IMAGE_REF, cmd=["true"], cmd_set=True, network_mode="none",
                                       security_opt=security_opt)
    cid = str(client.containers.Create(container_pb2.CreateRequest(spec=spec), timeout=60).id)
    try:
        client.start(cid)
        code = client.wait(cid)
        if code != 0:
            raise RuntimeError(f"container exited {code}")
    finally:
        client.remove(cid, force=True)


def _library(ctx: Context, bundle: Path, null: int) -> Callable[[], None]:
    state = str(ctx.run_dir / "seccomp-lib")

    def run() -> None:
        c = Container.create(bundle, ctx.next_id("bench-sec"), Stdio(null, null, null), state_dir=state)
        try:
            c.start()
            _, status = os.waitpid(c.pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError(f"exit status {status}")
        finally:
            c.delete()
    return run


def _runc(ctx: Context, bundle: Path) -> Callable[[], None]:
    runc = ctx.path("runc", "runc")
    state = str(ctx.run_dir / "seccomp-runc")
    return lambda: run_ok([runc, "--root", state, "run", "--bundle", str(bundle), ctx.next_id("bench-secr")])


def _row(key: str, run: Callable[[], None], runs: int, warmup: int) -> dict[str, Any]:
    label = LABELS[key]
    samples: list[float] = []
    try:
        for _ in range(warmup):
            run()
        for _ in range(runs):
            t = time.perf_counter()
            run()
            samples.append((time.perf_counter() - t) * 1000.0)
    except Exception as exc:  # one broken row must not hide the others
        print(f"  {label:<58} failed: {describe_error(exc)}", flush=True)
        return {"label": label, "skipped": f"failed: {describe_error(exc)}"}
    s = summarize(samples)
    print(f"  {label:<58} p50 {s.p50:8.1f} ms   p90 {s.p90:8.1f} ms   (n={s.n})", flush=True)
    return {"label": label, "summary": s.as_dict(), "samples_ms": [round(x, 3) for x in samples]}


def measure(ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ctx.ctrd is not None:
        client = CtrdClient(ctx.ctrd.address)
        try:
            # interleaved pairs would be fairer on a busy machine; rows are run back to back instead,
            # each after its own warm-up, and the report keeps the load average
            out["ctrd_api_default"] = _row("ctrd_api_default", lambda: _ctrd_run(client, []), ctx.runs, ctx.warmup)
            out["ctrd_api_unconfined"] = _row("ctrd_api_unconfined", lambda: _ctrd_run(client, ["seccomp=unconfined"]),
                                              ctx.runs, ctx.warmup)
        finally:
            client.close()
    else:
        for key in ("ctrd_api_default", "ctrd_api_unconfined"):
            out[key] = {"label": LABELS[key], "skipped": f"ctrd daemon not available: {ctx.ctrd_skip}"}
    if not ctx.has("runc"):
        for key in LABELS:
            out.setdefault(key, {"label": LABELS[key], "skipped": "runc not installed (its spec builds the bundle)"})
        return out
    null = os.open("/dev/null", os.O_RDWR)
    try:
        heavy_runs = max(3, ctx.runs // 5)
        for mode in ("default", "unconfined"):
            true_bundle = _bundle(ctx, f"true-{mode}", ["/bin/true"], mode == "default")
            dd_bundle = _bundle(ctx, f"dd-{mode}", DD, mode == "default")
            out[f"runtime_lib_{mode}"] = _row(f"runtime_lib_{mode}", _library(ctx, true_bundle, null), ctx.runs,
                                              ctx.warmup)
            out[f"runc_{mode}"] = _row(f"runc_{mode}", _runc(ctx, true_bundle), ctx.runs, ctx.warmup)
            out[f"dd_lib_{mode}"] = _row(f"dd_lib_{mode}", _library(ctx, dd_bundle, null), heavy_runs, 1)
            out[f"dd_runc_{mode}"] = _row(f"dd_runc_{mode}", _runc(ctx, dd_bundle), heavy_runs, 1)
    finally:
        os.close(null)
    return {k: out[k] for k in LABELS if k in out}
