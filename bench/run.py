"""`python -m bench.run`: ctrd side by side with runc, containerd and docker, in one run.

Checks which peers are installed (never installs anything), builds one busybox rootfs, starts
containerd, dockerd and ctrd in a private mount+network namespace with temp dirs, measures, stops them
by pid and removes everything it made. Writes bench/results/latest.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    attach_bench,
    chart,
    engines,
    exec_bench,
    fleet,
    health_bench,
    latency,
    network_section,
    report,
    scale,
    scale_report,
    scripts,
    seccomp_bench,
    stoplat,
)
from bench.context import Context, run_ok
from bench.ctrd_daemon import Ctrd, CtrdClient, CtrdUnavailable, describe_error
from bench.daemons import (
    Containerd,
    Dockerd,
    kill_cgroup_tree,
    remove_cgroup_tree,
)
from bench.machine import cpu_pressure_avg60, describe_machine
from bench.peers import SystemProbe, describe, detect, install_hint
from bench.pyspy import PySpy, summarize_collapsed
from bench.rootfs import IMAGE_REF, build_oci_archive, build_rootfs, build_tarball
from bench.sandbox import Sandbox
from bench.stats import Steps, step_p50s

SECTIONS = ("latency", "fleet", "stop", "seccomp", "network", "health", "profile", "attach", "exec", "scale",
            "engines")
ALIASES = {"density": "fleet", "concurrency": "fleet", "recovery": "fleet"}
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--quick", action="store_true", help="fewer runs (10 after 2 warm-up), N=20, 3 stops")
    p.add_argument("--only", action="append", default=[], metavar="SECTION",
                   help="latency | fleet (= density, concurrency, recovery) | stop | seccomp | network | health | profile | "
                        "attach | exec | scale | engines; "
                        "repeatable. "
                        "Other sections of an existing latest.json are kept")
    p.add_argument("--runs", type=int, help="latency runs per row after warm-up (default 30)")
    p.add_argument("--warmup", type=int, help="warm-up runs per latency row (default 5)")
    p.add_argument("-n", type=int, help="containers for density/concurrency/recovery (default 100)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--scale-n", type=int, action="append", default=[], metavar="N",
                   help="the scale section's N (repeatable; default 100, 300, 1000; --quick: 10, 30)")
    p.add_argument("--scale-series", action="append", default=[], metavar="TEXT",
                   help="scale: only the series whose name contains TEXT (repeatable), e.g. bridge, 'ctrd, none'; "
                        "the points join those of results/latest.json")
    p.add_argument("--stop-runs", type=int, help="stop latency samples per engine (default 10)")
    p.add_argument("--no-docker", action="store_true", help="do not start dockerd even when installed")
    p.add_argument("--no-containerd", action="store_true", help="do not start containerd even when installed")
    p.add_argument("--no-ctrd", action="store_true", help="measure the peers only")
    p.add_argument("--profile", action="store_true",
                   help="also run ctrd's API latency path under py-spy (daemon + shims) and summarise it")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory (default bench/results)")
    return p.parse_args(argv)


def chosen_sections(only: list[str]) -> list[str]:
    if not only:
        return [s for s in SECTIONS if s not in ("profile", "scale")]  # scale is long: asked for by name
    picked: list[str] = []
    for item in ",".join(only).split(","):
        name = ALIASES.get(item.strip(), item.strip())
        if name not in SECTIONS:
            raise SystemExit(f"unknown section {item!r}: choose from {', '.join(SECTIONS)}, {', '.join(ALIASES)}")
        if name not in picked:
            picked.append(name)
    return picked


def start_peers(ctx: Context, args: argparse.Namespace) -> None:
    if ctx.has("containerd") and not args.no_containerd:
        ns = ctx.cgroup_names()[0]
        c = Containerd(ctx.sandbox, ctx.work / "ctd", ctx.path("containerd", "containerd"), ctx.path("containerd", "ctr"),
                       namespace=ns)
        try:
            c.start()
            ctx.containerd = c
            run_ok(c.ctr("images", "import", str(ctx.oci_archive)))
        except Exception as exc:
            ctx.note(f"containerd could not be used: {exc}")
    if ctx.has("docker") and not args.no_docker:
        d = Dockerd(ctx.sandbox, ctx.work / "dk", ctx.path("docker", "dockerd"), ctx.path("docker", "docker"),
                    cgroup_parent=ctx.cgroup_names()[1], runtimes=engines.dockerd_runtimes())
        try:
            d.start(live_restore=True)
            ctx.dockerd = d
            run_ok(d.docker("import", "-c", "ENV PATH=/bin", "-c", 'CMD ["sh"]', str(ctx.tarball), IMAGE_REF),
                   env=d.env)
        except Exception as exc:
            ctx.note(f"dockerd could not be used here: {exc}")
    if args.no_ctrd:
        ctx.ctrd_skip = "--no-ctrd given"
        return
    binary = _script("ctrd")
    if binary is None:
        ctx.ctrd_skip = "no ctrd on PATH (pip install -e .)"
        return
    k = Ctrd(ctx.sandbox, ctx.work / "ctrd", binary, exec_root=ctx.work / "x", cgroup_parent=ctx.cgroup_names()[2])
    try:
        ctx.sandbox.mount_tmpfs(k.exec_root)
        k.start(live_restore=True)
        ctx.ctrd = k
        client = CtrdClient(k.address)
        try:
            client.import_image(ctx.tarball, IMAGE_REF, ["ENV PATH=/bin", 'CMD ["sh"]'])
        finally:
            client.close()
    except CtrdUnavailable as exc:
        ctx.ctrd_skip = str(exc)
    except Exception as exc:
        ctx.ctrd_skip = f"image import failed: {describe_error(exc)}"
        k.stop()
        ctx.ctrd = None
    if ctx.ctrd is None:
        print(f"  ctrd daemon not available: {ctx.ctrd_skip}", flush=True)


def teardown(ctx: Context) -> None:
    """Stop every daemon by pid, kill leftovers in the sandbox, drop cgroups and temp dirs."""
    for name, stop in (("ctrd", ctx.ctrd and _stop_ctrd(ctx)), ("dockerd", ctx.dockerd and ctx.dockerd.stop),
                       ("containerd", ctx.containerd and ctx.containerd.stop)):
        if stop:
            try:
                stop()
            except Exception as exc:
                ctx.note(f"stopping {name}: {exc}")
    left = ctx.sandbox.kill_members()
    if left:
        ctx.note(f"teardown had to SIGKILL {len(left)} leftover process(es) in the sandbox")
    ctx.sandbox.stop()
    for name in ctx.cgroup_names():
        killed = kill_cgroup_tree(name)
        if killed:
            ctx.note(f"teardown had to SIGKILL {len(killed)} container process(es) left in cgroup {name}")
        stuck = remove_cgroup_tree(name)
        if stuck:
            ctx.note(f"cgroups left behind: {', '.join(stuck[:5])}")
    prefix = str(ctx.work) + "/"
    with open("/proc/self/mountinfo") as f:
        if any(line.split()[4].startswith(prefix) for line in f):
            ctx.note(f"mounts left under {ctx.work}: work dir kept")
            return
    shutil.rmtree(ctx.work, ignore_errors=True)
    shutil.rmtree(ctx.run_dir, ignore_errors=True)


def _stop_ctrd(ctx: Context) -> Callable[[], None]:
    def stop() -> None:
        assert ctx.ctrd is not None
        try:
            ctx.ctrd.remove_all()
        finally:
            ctx.ctrd.stop()
    return stop


def _guard(ctx: Context, what: str, fn: Callable[[Context], dict[str, Any]]) -> dict[str, Any]:
    print(f"  {what} ...", flush=True)
    try:
        result = fn(ctx)
    except Exception as exc:  # one engine failing must not lose the others' figures
        ctx.note(f"{what} failed: {describe_error(exc)}")
        return {"skipped": f"failed: {describe_error(exc)}"}
    print(f"  {what}: {json.dumps({k: v for k, v in result.items() if k != 'samples_ms'})}", flush=True)
    return result


def measure(ctx: Context, sections: list[str], scale_ns: list[int] | None = None,
            scale_only: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ctrd_skip = {"skipped": f"ctrd daemon not available: {ctx.ctrd_skip}"}
    if "latency" in sections:
        print("latency (run → exit → removed, `true`):", flush=True)
        out["latency"] = latency.measure(ctx)
    if "engines" in sections:
        print("engines (ctrd-runtime under dockerd and containerd beside runc; CLI start-up; interleaved):",
              flush=True)
        out["engines"] = engines.measure(ctx)
    if "fleet" in sections:
        print(f"fleet ({ctx.n} sleeping containers, {ctx.clients} clients):", flush=True)
        out["fleet"] = {
            "ctrd": _guard(ctx, "ctrd fleet", fleet.ctrd_fleet) if ctx.ctrd else ctrd_skip,
            "containerd": _guard(ctx, "containerd fleet", fleet.containerd_fleet) if ctx.containerd
            else {"skipped": "containerd not running"},
            "docker": _guard(ctx, "docker fleet", fleet.docker_fleet) if ctx.dockerd
            else {"skipped": "dockerd not running"},
        }
    if "seccomp" in sections:
        print("seccomp (docker's default profile vs none, same run):", flush=True)
        out["seccomp"] = seccomp_bench.measure(ctx)
    if "network" in sections:
        print("network (bridge setup+teardown with/without firewall; DNS lookup inside a container):", flush=True)
        out["network"] = network_section.measure(ctx)
    if "attach" in sections:
        print("attach (stdin, tty: `run -i` cost, 1 GiB through cat, attached shim PSS; ctrd beside docker):", flush=True)
        out["attach"] = attach_bench.measure(ctx)
    if "exec" in sections:
        print("exec (`exec c true` p50, 256 MiB through `exec -i c cat`; ctrd beside docker):", flush=True)
        out["exec"] = exec_bench.measure(ctx)
    if "health" in sections:
        print("health (1 s healthcheck vs none: shim memory, daemon RSS growth):", flush=True)
        out["health"] = {
            "ctrd": _guard(ctx, "ctrd health", health_bench.ctrd_health) if ctx.ctrd else ctrd_skip,
            "docker": _guard(ctx, "docker health", health_bench.docker_health) if ctx.dockerd
            else {"skipped": "dockerd not running"},
        }
    if "profile" in sections:
        print("profile of ctrd's API latency path (py-spy):", flush=True)
        out["profile"] = _guard(ctx, "ctrd profile", profile_ctrd) if ctx.ctrd else ctrd_skip
    if "scale" in sections:
        ns = scale_ns or list(scale.NS)
        print(f"scale (N = {', '.join(map(str, ns))} sleeping containers, {ctx.clients} clients):", flush=True)
        out["scale"] = scale.measure(ctx, ns, _ctrctl_path(), _guard, scale_only or ())
    if "stop" in sections:
        print("stop latency (TERM-handling container):", flush=True)
        out["stop"] = {
            "ctrd": _guard(ctx, "ctrd stop", stoplat.ctrd_stop) if ctx.ctrd else ctrd_skip,
            "docker": _guard(ctx, "docker stop", stoplat.docker_stop) if ctx.dockerd
            else {"skipped": "dockerd not running"},
            "containerd (ctr task kill -s TERM, CLI)": _guard(ctx, "containerd stop", stoplat.containerd_stop)
            if ctx.containerd else {"skipped": "containerd not running"},
        }
    return out


def _ctrctl_path() -> str:
    return _script("ctrctl") or "ctrctl"


def _script(name: str) -> str | None:
    beside = Path(sys.executable).parent / name  # the console script itself, not a pyenv shim
    return str(beside) if beside.exists() else shutil.which(name)


def compile_project() -> None:
    """Byte-compile ctrd's packages, as installing a wheel does: with PYTHONDONTWRITEBYTECODE set
    (this machine's environment sets it) an editable install would otherwise compile every
    module it has no .pyc for at each start of the daemon, the shim launcher and each CLI call,
    and the figures would measure the compiler."""
    import compileall

    root = Path(__file__).resolve().parent.parent
    for pkg in ("daemon", "shimd", "runtime", "ctrctl", "protos"):
        if (root / pkg).is_dir():
            compileall.compile_dir(root / pkg, quiet=1)


def profile_ctrd(ctx: Context) -> dict[str, Any]:
    assert ctx.ctrd is not None
    raw = ctx.work / "ctrd-profile.txt"
    spy = PySpy(ctx.ctrd.pid(), raw)
    client = CtrdClient(ctx.ctrd.address)
    steps: Steps = {}
    try:
        client.run_rm(IMAGE_REF, ["true"], "none")
        spy.start()
        time.sleep(1.0)  # attached before the first run
        for _ in range(ctx.runs):
            client.run_rm(IMAGE_REF, ["true"], "none", steps)
    finally:
        err = spy.stop()
        client.close()
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote no profile: {err.strip()[-300:]}")
    text = raw.read_text()
    ctx.profile_text = text
    summary = summarize_collapsed(text)
    summary["runs"] = ctx.runs
    summary["steps_p50_ms_under_profiler"] = step_p50s(steps)
    return summary


def assemble(previous: dict[str, Any], measured: dict[str, Any], ctx: Context, sections: list[str],
             config: dict[str, Any], machine: dict[str, Any], hint: str | None) -> dict[str, Any]:
    rep: dict[str, Any] = dict(previous)
    dates = dict(previous.get("section_dates", {}))
    for name in sections:
        rep[name] = measured[name]
        dates[name] = machine["date"]
    rep["section_dates"] = dates
    rep["machine"] = machine
    rep["config"] = config
    rep["peers"] = {name: {"present": p.present, "version": p.version, "paths": p.paths}
                    for name, p in ctx.peers.items()}
    rep["install_hint"] = hint
    rep["notes"] = ctx.notes
    rep["ratios"] = report.compute_ratios(rep)
    rep["targets"] = report.evaluate_targets(rep)
    return rep


def new_workdir() -> tuple[str, Path]:
    """A fresh /tmp/ctrb-<tag> (kept short: ctrd's shim sockets live below it, under 108 bytes) and its
    tag, which also names this run's cgroup parents."""
    while True:
        tag = secrets.token_hex(4)
        work = Path("/tmp") / f"ctrb-{tag}"
        try:
            work.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return tag, work


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sections = chosen_sections(args.only)
    if args.profile and "profile" not in sections:
        sections.append("profile")
    if os.geteuid() != 0:
        print("the bench needs root (namespaces, cgroups, daemons)", file=sys.stderr)
        return 2
    peers = detect(SystemProbe())
    print("peers:")
    print("\n".join(describe(peers)))
    hint = install_hint(peers)
    if hint:
        print(f"missing peers are skipped; to measure them too: {hint}")
    compiled = scripts.compile_packages()  # bench.scripts says why
    if compiled:
        print(f"compiled .pyc for {', '.join(compiled)} (as an install would)")
    machine = describe_machine()
    q = args.quick
    tag, work = new_workdir()
    run_dir = Path(tempfile.mkdtemp(prefix="ctrb-", dir="/dev/shm" if Path("/dev/shm").is_dir() else "/tmp"))
    ctx = Context(work=work, rootfs=work / "rootfs", tarball=work / "rootfs.tar", oci_archive=work / "oci.tar",
                  sandbox=Sandbox(work / "ns"), run_dir=run_dir, peers=peers,
                  runs=args.runs or (10 if q else 30), warmup=args.warmup if args.warmup is not None else (2 if q else 5),
                  n=args.n or (20 if q else 100), clients=args.clients,
                  stop_runs=args.stop_runs or (3 if q else 10), tag=tag)
    if ctx.n < 100 and "fleet" in sections:
        ctx.note(f"N={ctx.n} (quick run): the targets are stated for N=100")
    config = {"state_dirs": "exec-root / state / runc --root on tmpfs, data roots on disk", "runs": ctx.runs, "warmup": ctx.warmup, "n": ctx.n, "clients": ctx.clients,
              "stop_runs": ctx.stop_runs, "quick": q, "sections": sections}
    compile_project()
    try:
        build_rootfs(ctx.rootfs)
        build_tarball(ctx.rootfs, ctx.tarball)
        build_oci_archive(ctx.tarball, ctx.oci_archive)
        ctx.sandbox.start()
        start_peers(ctx, args)
        measured = measure(ctx, sections, args.scale_n or (list(scale.NS_QUICK) if q else None), args.scale_series)
    finally:
        teardown(ctx)
    machine["loadavg_at_end"] = os.getloadavg()[0]
    machine["cpu_pressure_avg60_at_end"] = cpu_pressure_avg60()
    args.out.mkdir(parents=True, exist_ok=True)
    latest = args.out / "latest.json"
    previous = json.loads(latest.read_text()) if args.only and latest.exists() else {}
    if "scale" in sections and previous.get("scale"):
        measured["scale"] = scale.merge(previous["scale"], measured["scale"])
    rep = assemble(previous, measured, ctx, sections, config, machine, hint)
    latest.write_text(json.dumps(rep, indent=1) + "\n")
    (args.out / "latest.md").write_text(report.render_markdown(rep))
    if ctx.profile_text:
        (args.out / "ctrd-profile.txt").write_text(ctx.profile_text)
    png = chart.render_latency_png(rep, args.out / "latency.png")
    if "scale" in sections and scale_report.render_png(rep, args.out / "scale.png"):
        print(f"wrote {args.out / 'scale.png'}")
    print(f"wrote {latest}, latest.md" + (", latency.png" if png else " (no matplotlib: no chart)"))
    print(report.render_markdown(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
