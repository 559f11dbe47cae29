"""Latency of run → exit → removed for `true`, every engine on the same busybox rootfs, the rows
timed in rounds (bench.rounds)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.context import Context, run_ok
from bench.ctrd_daemon import CtrdClient, describe_error
from bench.dockerapi import DockerAPI
from bench.rootfs import CONTAINERD_REF, IMAGE_REF, build_bundle
from bench.rounds import run_rounds
from bench.scripts import console_script
from bench.stats import Steps, step_p50s, summarize

LABELS: dict[str, str] = {
    "floor": "floor: unshare -pmuin --fork chroot ROOTFS /bin/true",
    "runc": "runc run (bundle)",
    "ctrd_runtime": "ctrd-runtime run (bundle)",
    "ctr": "containerd: ctr run --rm",
    "docker_cli_none": "docker run --rm --network none",
    "docker_cli_bridge": "docker run --rm (bridge)",
    "docker_cli_volume": "docker run --rm --network none -v vol:/data",
    "docker_api_none": "docker Engine API create+start+wait+rm, none",
    "docker_api_bridge": "docker Engine API create+start+wait+rm, bridge",
    "ctrd_api_none": "ctrd gRPC API create+start+wait+rm, none",
    "ctrd_api_bridge": "ctrd gRPC API create+start+wait+rm, bridge",
    "ctrctl_none": "ctrctl run --rm --network none",
    "ctrctl_bridge": "ctrctl run --rm (bridge)",
    "docker_cli_ctrd": "docker run --rm (bridge), same docker CLI → ctrd's Docker API",
    "dockerpy_docker": "docker-py containers.run(remove=True) → dockerd",
    "dockerpy_ctrd": "docker-py containers.run(remove=True) → ctrd's Docker API",
    "ctrctl_volume": "ctrctl run --rm --network none -v vol:/data",
}
VOLUME = "benchvol"  # a named volume, made by the first run of each engine's volume row


@dataclass(frozen=True, slots=True)
class Case:
    key: str
    run: Callable[[], None] | None
    skip: str = ""
    close: Callable[[], None] | None = None
    steps: Steps | None = None   # per-call timings of API rows (create/start/wait/remove)


def _api_case(key: str, run_rm: Callable[[Steps], int], close: Callable[[], None] | None = None) -> Case:
    steps: Steps = {}

    def run() -> None:
        code = run_rm(steps)
        if code != 0:
            raise RuntimeError(f"{key}: container exited {code}, expected 0")
    return Case(key, run, close=close, steps=steps)


def cases(ctx: Context) -> list[Case]:
    out: list[Case] = []
    rootfs = str(ctx.rootfs)
    if ctx.has("unshare"):
        out.append(Case("floor", lambda: run_ok(["unshare", "-pmuin", "--fork", "chroot", rootfs, "/bin/true"])))
    else:
        out.append(Case("floor", None, "unshare/chroot not installed"))

    bundle = ctx.work / "bundle"
    state = ctx.run_dir / "runc"
    if ctx.has("runc"):
        runc = ctx.path("runc", "runc")
        build_bundle(runc, ctx.rootfs, bundle, ["/bin/true"])
        out.append(Case("runc", lambda: run_ok([runc, "--root", str(state), "run", "--bundle", str(bundle),
                                                ctx.next_id("bench-runc")])))
    else:
        out.append(Case("runc", None, "runc not installed (apt-get install runc)"))
    out.append(_ctrd_runtime_case(ctx, bundle))

    if ctx.containerd is not None:
        ctr = ctx.containerd.ctr
        out.append(Case("ctr", lambda: run_ok(ctr("run", "--rm", CONTAINERD_REF, ctx.next_id("bench-ctr"),
                                                  "true"))))
    else:
        out.append(Case("ctr", None, "containerd not running (apt-get install containerd)"))

    out.extend(_docker_cases(ctx))
    out.extend(_ctrd_cases(ctx))
    out.extend(_docker_api_client_cases(ctx))
    return out


def _dockerpy_case(key: str, socket_path: str) -> Case:
    try:
        import docker  # docker-py: a client nobody here wrote
    except ImportError:
        return Case(key, None, "docker-py not installed (pip install docker)")
    client = docker.DockerClient(base_url=f"unix://{socket_path}", timeout=120)

    def run() -> None:
        client.containers.run(IMAGE_REF, ["true"], remove=True)

    return Case(key, run, close=client.close)


def _docker_api_client_cases(ctx: Context) -> list[Case]:
    """The same clients (docker CLI, docker-py) against dockerd and against ctrd's Docker API socket."""
    out: list[Case] = []
    if ctx.dockerd is not None:
        out.append(_dockerpy_case("dockerpy_docker", ctx.dockerd.socket))
    else:
        out.append(Case("dockerpy_docker", None, "dockerd not running"))
    if ctx.ctrd is None or ctx.dockerd is None:
        why = f"ctrd daemon not available: {ctx.ctrd_skip}" if ctx.ctrd is None else "no docker CLI (dockerd not running)"
        return [*out, Case("docker_cli_ctrd", None, why), Case("dockerpy_ctrd", None, why)]
    sock = ctx.ctrd.docker_socket
    d = ctx.dockerd
    env = {**d.env, "DOCKER_HOST": f"unix://{sock}"}
    argv = [d.client, "run", "--rm", IMAGE_REF, "true"]
    out.append(Case("docker_cli_ctrd", lambda: run_ok(argv, env=env)))
    out.append(_dockerpy_case("dockerpy_ctrd", sock))
    return out


def _ctrd_runtime_case(ctx: Context, bundle: Path) -> Case:
    binary = console_script("ctrd-runtime")
    if not Path(binary).exists() or not (bundle / "config.json").exists():
        return Case("ctrd_runtime", None, "ctrd-runtime or the bundle is missing")
    state = ctx.run_dir / "ctrd-runtime"
    argv = [binary, "--root", str(state), "run", "--bundle", str(bundle)]
    probe = subprocess.run([*argv, "bench-rt-probe"], capture_output=True, text=True, timeout=60, check=False)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or [""])[-1]
        return Case("ctrd_runtime", None, f"ctrd-runtime run is not working yet (exit {probe.returncode}: {last})")
    return Case("ctrd_runtime", lambda: run_ok([*argv, ctx.next_id("bench-rt")]))


def _docker_cases(ctx: Context) -> list[Case]:
    if ctx.dockerd is None:
        reason = "dockerd not running" + ("" if ctx.has("docker") else " (apt-get install docker.io)")
        return [Case(k, None, reason) for k in
                ("docker_cli_none", "docker_cli_bridge", "docker_cli_volume", "docker_api_none", "docker_api_bridge")]
    d = ctx.dockerd
    api = DockerAPI(d.socket)
    return [
        Case("docker_cli_none", lambda: run_ok(d.docker("run", "--rm", "--network", "none", IMAGE_REF, "true"),
                                               env=d.env)),
        Case("docker_cli_bridge", lambda: run_ok(d.docker("run", "--rm", IMAGE_REF, "true"), env=d.env)),
        Case("docker_cli_volume", lambda: run_ok(d.docker("run", "--rm", "--network", "none", "-v", f"{VOLUME}:/data",
                                                          IMAGE_REF, "true"), env=d.env),
             close=lambda: _quiet(d.docker("volume", "rm", VOLUME), env=d.env)),
        _api_case("docker_api_none", lambda st: api.run_rm(IMAGE_REF, ["true"], "none", st)),
        _api_case("docker_api_bridge", lambda st: api.run_rm(IMAGE_REF, ["true"], "bridge", st), close=api.close),
    ]


def _ctrd_cases(ctx: Context) -> list[Case]:
    keys = ("ctrd_api_none", "ctrd_api_bridge", "ctrctl_none", "ctrctl_bridge", "ctrctl_volume")
    if ctx.ctrd is None:
        return [Case(k, None, f"ctrd daemon not available: {ctx.ctrd_skip}") for k in keys]
    address = ctx.ctrd.address
    client = CtrdClient(address)
    ctrctl = console_script("ctrctl")
    out = [
        _api_case("ctrd_api_none", lambda st: client.run_rm(IMAGE_REF, ["true"], "none", st)),
        _api_case("ctrd_api_bridge", lambda st: client.run_rm(IMAGE_REF, ["true"], "bridge", st), close=client.close),
    ]
    for mode in ("none", "bridge"):
        argv = [ctrctl, "-a", address, "run", "--rm", "--network", mode, IMAGE_REF, "true"]
        out.append(Case(f"ctrctl_{mode}", lambda argv=argv: run_ok(argv)))  # type: ignore[misc]
    vol = [ctrctl, "-a", address, "run", "--rm", "--network", "none", "-v", f"{VOLUME}:/data", IMAGE_REF, "true"]
    out.append(Case("ctrctl_volume", lambda: run_ok(vol),
                    close=lambda: _quiet([ctrctl, "-a", address, "volume", "rm", VOLUME])))
    return out


def _quiet(argv: list[str], env: dict[str, str] | None = None) -> None:
    """Clean-up after a row: reported, never raised (it runs in the row's finally)."""
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)
    if res.returncode != 0:
        print(f"  clean-up {' '.join(argv[-3:])}: {res.stderr.strip()}", flush=True)


def measure(ctx: Context) -> dict[str, Any]:
    """Every row timed in rounds (bench.rounds): the ratio targets compare rows run side by side."""
    results: dict[str, Any] = {}
    live: list[Case] = []
    for case in cases(ctx):
        if case.run is None:
            print(f"  {LABELS[case.key]:<52} skipped: {case.skip}", flush=True)
            results[case.key] = {"label": LABELS[case.key], "skipped": case.skip}
        else:
            live.append(case)

    def forget_warmup_steps() -> None:
        for case in live:
            if case.steps is not None:
                case.steps.clear()

    try:
        timed = run_rounds([(c.key, c.run) for c in live if c.run is not None], ctx.warmup, ctx.runs,
                           describe_error, after_warmup=forget_warmup_steps)
    finally:
        for case in live:
            if case.close is not None:
                case.close()
    for case in live:
        label = LABELS[case.key]
        samples, failures = timed.samples[case.key], timed.failures[case.key]
        if not timed.enough(case.key, ctx.runs):
            why = failures[0] if failures else "no samples"
            print(f"  {label:<52} failed: {why}", flush=True)
            results[case.key] = {"label": label, "skipped": f"failed: {why}", "failures": len(failures)}
            continue
        s = summarize(samples)
        print(f"  {label:<52} p50 {s.p50:8.1f} ms   p90 {s.p90:8.1f} ms   (n={s.n})", flush=True)
        results[case.key] = {"label": label, "summary": s.as_dict(), "samples_ms": [round(x, 3) for x in samples]}
        if failures:
            # an intermittent failure is reported with its rate instead of hiding the row's figures
            results[case.key]["failures"] = len(failures)
            results[case.key]["first_failure"] = failures[0]
            print(f"  {'':<52} {len(failures)} failed attempt(s): {failures[0]}", flush=True)
        if case.steps:
            results[case.key]["steps_p50_ms"] = step_p50s(case.steps)
            print(f"  {'':<52} steps p50: {results[case.key]['steps_p50_ms']}", flush=True)
    return results
