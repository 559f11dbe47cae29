"""ctrd-runtime as the engines drive it, beside runc in the same engine, and what each CLI call
costs to start, every row interleaved run by run in one loop (issues 19 and 22).

- `docker run --rm --network none --runtime ctrd` vs `--runtime runc`, one dockerd (the bench's,
  started with `--add-runtime ctrd=<console script>`);
- `ctr run --rm --runc-binary <console script>` vs plain `ctr run --rm` (runc), the bench's containerd;
- `ctrd-runtime run` vs `runc run` of one `runc spec` bundle;
- start-up only: `--version` of both runtimes, `ctrctl version` beside `docker version` (client and
  server), and the interpreter itself (`python -I -S -c pass`, `python -c pass`) as the floor every
  Python CLI call pays here, with whatever .pth files this machine's site-packages hold.

The console scripts are the ones beside sys.executable (bench.scripts says why not PATH). The rows
are timed in rounds (bench.rounds)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.context import Context, run_ok, run_quiet
from bench.ctrd_daemon import describe_error
from bench.rootfs import CONTAINERD_REF, IMAGE_REF, build_bundle
from bench.rounds import run_rounds
from bench.scripts import console_script
from bench.stats import summarize

LABELS: dict[str, str] = {
    "docker_runc": "docker run --rm --network none --runtime runc",
    "docker_ctrd": "docker run --rm --network none --runtime ctrd (ctrd-runtime)",
    "ctr_runc": "containerd: ctr run --rm (runc)",
    "ctr_ctrd": "containerd: ctr run --rm --runc-binary ctrd-runtime",
    "runc_run": "runc run (bundle)",
    "ctrd_runtime_run": "ctrd-runtime run (bundle)",
    "runc_version": "runc --version",
    "ctrd_runtime_version": "ctrd-runtime --version",
    "ctrd_runtime_state": "ctrd-runtime state <missing id> (start-up + error)",
    "runc_state": "runc state <missing id> (start-up + error)",
    "docker_version": "docker version (client + server)",
    "ctrctl_version": "ctrctl version (client + server)",
    "python_isolated": "python -I -S -c pass (interpreter floor)",
    "python_site": "python -c pass (with this machine's site-packages .pth files)",
}
# (ours, peer) pairs whose ratio the section reports; report.py holds the targets.
PAIRS: tuple[tuple[str, str], ...] = (
    ("docker_ctrd", "docker_runc"),
    ("ctr_ctrd", "ctr_runc"),
    ("ctrd_runtime_run", "runc_run"),
    ("ctrd_runtime_version", "runc_version"),
    ("ctrd_runtime_state", "runc_state"),
    ("ctrctl_version", "docker_version"),
)


def ctrd_runtime() -> str | None:
    path = console_script("ctrd-runtime")
    return path if Path(path).exists() else None


def dockerd_runtimes() -> dict[str, str]:
    """The bench's dockerd gets ctrd-runtime as runtime `ctrd` (the default stays runc)."""
    path = ctrd_runtime()
    return {"ctrd": path} if path else {}


Row = tuple[str, Callable[[], None] | None, str]  # key, run (None: skipped), why skipped


def _ok_any(argv: list[str], env: dict[str, str] | None = None) -> None:
    """Start-up rows that end in an error on purpose (state of a missing id): any exit is fine,
    as long as the program ran and said something."""
    run_quiet(argv, timeout=60, env=env)


def rows(ctx: Context) -> list[Row]:
    out: list[Row] = []
    rt = ctrd_runtime()
    runc = ctx.path("runc", "runc") if ctx.has("runc") else None
    no_rt = "no ctrd-runtime console script beside the interpreter (pip install -e .)"

    d = ctx.dockerd
    if d is None:
        out += [("docker_runc", None, "dockerd not running"), ("docker_ctrd", None, "dockerd not running")]
    else:
        def docker_run(runtime: str) -> Callable[[], None]:
            argv = d.docker("run", "--rm", "--network", "none", "--runtime", runtime, IMAGE_REF, "true")
            return lambda: run_ok(argv, env=d.env)
        out.append(("docker_runc", docker_run("runc"), ""))
        if "ctrd" in d.runtimes:
            out.append(("docker_ctrd", docker_run("ctrd"), ""))
        else:
            out.append(("docker_ctrd", None, "dockerd was started without --add-runtime ctrd (" + no_rt + ")"))

    c = ctx.containerd
    if c is None:
        out += [("ctr_runc", None, "containerd not running"), ("ctr_ctrd", None, "containerd not running")]
    else:
        ctr = c.ctr
        out.append(("ctr_runc", lambda: run_ok(ctr("run", "--rm", CONTAINERD_REF, ctx.next_id("eng-ctr"), "true")), ""))
        if rt:
            out.append(("ctr_ctrd", lambda: run_ok(ctr("run", "--rm", "--runc-binary", rt, CONTAINERD_REF,
                                                       ctx.next_id("eng-ctrrt"), "true")), ""))
        else:
            out.append(("ctr_ctrd", None, no_rt))

    if runc is None:
        out += [(k, None, "runc not installed") for k in ("runc_run", "runc_version", "runc_state")]
    else:
        bundle = build_bundle(runc, ctx.rootfs, ctx.work / "engines-bundle", ["/bin/true"])
        runc_root = str(ctx.run_dir / "engines-runc")
        out.append(("runc_run", lambda: run_ok([runc, "--root", runc_root, "run", "--bundle", str(bundle),
                                                ctx.next_id("eng-runc")]), ""))
        if rt:
            rt_root = str(ctx.run_dir / "engines-rt")
            out.append(("ctrd_runtime_run", lambda: run_ok([rt, "--root", rt_root, "run", "--bundle", str(bundle),
                                                            ctx.next_id("eng-rt")]), ""))
        out.append(("runc_version", lambda: run_ok([runc, "--version"]), ""))
        out.append(("runc_state", lambda: _ok_any([runc, "--root", runc_root, "state", "eng-missing"]), ""))
    if rt:
        rt_root = str(ctx.run_dir / "engines-rt")
        out.append(("ctrd_runtime_version", lambda: run_ok([rt, "--version"]), ""))
        out.append(("ctrd_runtime_state", lambda: _ok_any([rt, "--root", rt_root, "state", "eng-missing"]), ""))
    else:
        out += [("ctrd_runtime_run", None, no_rt), ("ctrd_runtime_version", None, no_rt),
                ("ctrd_runtime_state", None, no_rt)]

    if d is not None:
        out.append(("docker_version", lambda: run_ok(d.docker("version"), env=d.env), ""))
    else:
        out.append(("docker_version", None, "dockerd not running"))
    if ctx.ctrd is not None:
        ctl, address = console_script("ctrctl"), ctx.ctrd.address
        out.append(("ctrctl_version", lambda: run_ok([ctl, "-a", address, "version"]), ""))
    else:
        out.append(("ctrctl_version", None, f"ctrd daemon not available: {ctx.ctrd_skip}"))

    py = sys.executable
    out.append(("python_isolated", lambda: run_ok([py, "-I", "-S", "-c", "pass"]), ""))
    out.append(("python_site", lambda: run_ok([py, "-c", "pass"]), ""))
    return out


def _probe(key: str, run: Callable[[], None]) -> str:
    """One try before timing: a row that cannot work is reported skipped with its error."""
    try:
        run()
        return ""
    except Exception as exc:
        return f"{key} does not work here: {describe_error(exc)}"


def measure(ctx: Context) -> dict[str, Any]:
    results: dict[str, Any] = {}
    live: list[tuple[str, Callable[[], None]]] = []
    for key, run, skip in rows(ctx):
        if run is not None:
            skip = _probe(key, run)
        if run is None or skip:
            results[key] = {"label": LABELS[key], "skipped": skip}
            print(f"  {LABELS[key]:<62} skipped: {skip}", flush=True)
        else:
            live.append((key, run))
    timed = run_rounds(live, ctx.warmup, ctx.runs, describe_error)
    for key, _ in live:
        label = LABELS[key]
        got, failed = timed.samples[key], timed.failures[key]
        if not timed.enough(key, ctx.runs):
            results[key] = {"label": label, "skipped": f"failed: {failed[0] if failed else 'no samples'}",
                            "failures": len(failed)}
            print(f"  {label:<62} failed: {results[key]['skipped']}", flush=True)
            continue
        s = summarize(got)
        results[key] = {"label": label, "summary": s.as_dict(), "samples_ms": [round(x, 3) for x in got]}
        if failed:
            results[key].update(failures=len(failed), first_failure=failed[0])
        print(f"  {label:<62} p50 {s.p50:8.1f} ms   p90 {s.p90:8.1f} ms   (n={s.n})", flush=True)
    ratios: dict[str, float] = {}
    for ours, peer in PAIRS:
        a, b = results.get(ours, {}).get("summary"), results.get(peer, {}).get("summary")
        if a and b and b["p50"]:
            ratios[f"{ours}/{peer}"] = round(a["p50"] / b["p50"], 3)
    if ratios:
        print(f"  ratios (p50): {ratios}", flush=True)
    results["ratios"] = ratios
    return results
