"""Section `seccomp`: what docker's default profile costs, against no profile, in the same run.

Rows (p50/p90 over ctx.runs after ctx.warmup), each with/without pair interleaved run by run:
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


def _pair(keys: tuple[str, str], runs: tuple[Callable[[], None], Callable[[], None]], n: int,
          warmup: int) -> dict[str, dict[str, Any]]:
    """Both rows of a with/without pair, interleaved run by run and in turns reversed (the run
    just after another one can pay for its leftovers: a cgroup being torn down, cold caches):
    other load on the machine then weighs on both alike."""
    samples: dict[str, list[float]] = {k: [] for k in keys}
    try:
        for _ in range(warmup):
            for run in runs:
                run()
        for i in range(n):
            pairs = list(zip(keys, runs, strict=True))
            for key, run in (pairs if i % 2 == 0 else pairs[::-1]):
                t = time.perf_counter()
                run()
                samples[key].append((time.perf_counter() - t) * 1000.0)
    except Exception as exc:  # one broken pair must not hide the others
        why = describe_error(exc)
        for key in keys:
            print(f"  {LABELS[key]:<58} failed: {why}", flush=True)
        return {key: {"label": LABELS[key], "skipped": f"failed: {why}"} for key in keys}
    out = {}
    for key in keys:
        s = summarize(samples[key])
        print(f"  {LABELS[key]:<58} p50 {s.p50:8.1f} ms   p90 {s.p90:8.1f} ms   (n={s.n})", flush=True)
        out[key] = {"label": LABELS[key], "summary": s.as_dict(), "samples_ms": [round(x, 3) for x in samples[key]]}
    return out


def measure(ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ctx.ctrd is not None:
        client = CtrdClient(ctx.ctrd.address)
        try:
            out.update(_pair(("ctrd_api_default", "ctrd_api_unconfined"),
                             (lambda: _ctrd_run(client, []), lambda: _ctrd_run(client, ["seccomp=unconfined"])),
                             ctx.runs, ctx.warmup))
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
        true_b = {m: _bundle(ctx, f"true-{m}", ["/bin/true"], m == "default") for m in ("default", "unconfined")}
        dd_b = {m: _bundle(ctx, f"dd-{m}", DD, m == "default") for m in ("default", "unconfined")}
        out.update(_pair(("runtime_lib_default", "runtime_lib_unconfined"),
                         (_library(ctx, true_b["default"], null), _library(ctx, true_b["unconfined"], null)),
                         ctx.runs, ctx.warmup))
        out.update(_pair(("runc_default", "runc_unconfined"),
                         (_runc(ctx, true_b["default"]), _runc(ctx, true_b["unconfined"])), ctx.runs, ctx.warmup))
        out.update(_pair(("dd_lib_default", "dd_lib_unconfined"),
                         (_library(ctx, dd_b["default"], null), _library(ctx, dd_b["unconfined"], null)), heavy_runs, 1))
        out.update(_pair(("dd_runc_default", "dd_runc_unconfined"),
                         (_runc(ctx, dd_b["default"]), _runc(ctx, dd_b["unconfined"])), heavy_runs, 1))
    finally:
        os.close(null)
    return {k: out[k] for k in LABELS if k in out}
