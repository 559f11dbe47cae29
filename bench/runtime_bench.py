"""Spawn-to-exit of `true` on one busybox bundle: the runtime library in-process, `ctrd-runtime run`,
and Debian's `runc run` (not a test: figures for comparison, p50/p90 over N runs).

    sudo python bench/runtime_bench.py [-n 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime import Container, Stdio
from tests.rootfs import make_busybox_rootfs, write_bundle


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    k = (len(s) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def measure(fn: Callable[[int], None], n: int, warmup: int = 3) -> list[float]:
    for i in range(warmup):
        fn(-1 - i)
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="ctrdb-", dir="/tmp"))
    try:
        rootfs = make_busybox_rootfs(tmp / "rootfs")
        bundle = write_bundle(tmp / "bundle", ["true"], rootfs, cgroups_path="/ctrd-bench/rt")
        null = os.open("/dev/null", os.O_RDWR)
        stdio = Stdio(null, null, null)

        def library(i: int) -> None:
            c = Container.create(bundle, f"lib{i}", stdio)
            c.start()
            os.waitpid(c.pid, 0)
            c.delete()

        state_root = str(tmp / "state")
        # The console script next to this interpreter (a pyenv shim on PATH would add a bash hop).
        cli = os.path.join(os.path.dirname(sys.executable), "ctrd-runtime")
        cli_cmd = [cli] if os.path.exists(cli) else [sys.executable, "-m", "runtime.cli"]

        def ctrd_runtime(i: int) -> None:
            subprocess.run([*cli_cmd, "--root", state_root, "run", "--bundle", str(bundle), f"cli{i}"],
                           check=True, stdin=null, stdout=null, stderr=null)

        runc_root = str(tmp / "runc")

        def runc(i: int) -> None:
            subprocess.run(["runc", "--root", runc_root, "run", "--bundle", str(bundle), f"runc{i}"],
                           check=True, stdin=null, stdout=null, stderr=null)

        def floor(i: int) -> None:
            subprocess.run(["unshare", "-pfmuin", "chroot", str(rootfs), "/bin/true"], check=True)

        results: dict[str, list[float]] = {}
        results["in-process library (create+start+wait+delete)"] = measure(library, args.n)
        results["ctrd-runtime run (new python process)"] = measure(ctrd_runtime, args.n)
        if shutil.which("runc"):
            results["runc run"] = measure(runc, args.n)
        results["floor: unshare -pfmuin chroot true"] = measure(floor, args.n)
        os.close(null)
    finally:
        for parent in Path("/sys/fs/cgroup").glob("*/ctrd-bench"):
            try:
                parent.rmdir()  # the empty shared parent of the per-run cgroups
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps({k: {"p50": _pct(v, 0.5), "p90": _pct(v, 0.9), "n": len(v)} for k, v in results.items()}))
        return 0
    print(f"spawn-to-exit of `true`, busybox bundle, n={args.n} each (ms)")
    print(f"{'what':<50}{'p50':>8}{'p90':>8}{'mean':>8}")
    for k, v in results.items():
        print(f"{k:<50}{_pct(v, 0.5):>8.1f}{_pct(v, 0.9):>8.1f}{statistics.fmean(v):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
