"""Wall time of the CLI: `ctrctl --help`, `ctrctl ps` (and `ctrctl run --rm [--network none|-d]
busybox true` against a real daemon), next to `docker ps` / `docker run --rm` when a docker daemon
answers. Uses hyperfine.

    python bench/ctrctl_bench.py                      # against an in-process fake daemon
    python bench/ctrctl_bench.py --address /run/ctrd/ctrd.sock   # against a running ctrd
    python bench/ctrctl_bench.py --start-ctrd         # start a private ctrd (root; tests/daemon_fixtures)

Standalone: run from the repository root. The console script is called directly (not through a
pyenv shim, which adds its own ~50 ms of bash).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def ctrctl_path() -> str:
    beside = Path(sys.executable).parent / "ctrctl"
    return str(beside) if beside.exists() else (shutil.which("ctrctl") or "ctrctl")


def docker_ready() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def hyperfine(commands: dict[str, str], runs: int) -> dict[str, dict[str, float]]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = ["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", out.name]
        for name, cmd in commands.items():
            argv += ["-n", name, cmd]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        data = json.loads(Path(out.name).read_text())
    return {r["command"]: {k: r[k] * 1000 for k in ("mean", "stddev", "median", "min", "max")} for r in data["results"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", help="a running ctrd's socket (default: start a fake daemon)")
    p.add_argument("--start-ctrd", action="store_true", help="start a private real ctrd for the run (root)")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    ctl = ctrctl_path()
    fake: Any = None
    real: Any = None
    address = args.address
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    tmp = tempfile.mkdtemp(prefix="ctrdt-", dir="/tmp")
    if args.start_ctrd:
        from tests.daemon_fixtures import start_daemon

        real = start_daemon(Path(tmp))
        address = real.address
        subprocess.run([ctl, "-a", address, "run", "--rm", "busybox", "true"], check=True)  # builds busybox
    elif address is None:
        from tests.integration.ctrctl_fake import FakeDaemon

        address = f"{tmp}/ctrd.sock"
        fake = FakeDaemon(address).start()
    commands = {
        "python -c pass (floor)": f"{sys.executable} -c pass",
        "ctrctl --help": f"{ctl} --help",
        "ctrctl ps": f"{ctl} -a {address} ps",
        "ctrctl ps -a": f"{ctl} -a {address} ps -a",
    }
    if args.address or real is not None:
        commands["ctrctl run --rm busybox true"] = f"{ctl} -a {address} run --rm busybox true"
        commands["ctrctl run --rm --network none"] = f"{ctl} -a {address} run --rm --network none busybox true"
        commands["ctrctl run -d --rm --network none"] = f"{ctl} -a {address} run -d --rm --network none busybox true"
    if docker_ready():
        commands["docker ps"] = "docker ps"
        commands["docker run --rm busybox true"] = "docker run --rm busybox true"
        commands["docker run --rm --network none"] = "docker run --rm --network none busybox true"
    try:
        results = hyperfine(commands, args.runs)
    finally:
        if fake is not None:
            fake.stop()
        if real is not None:
            from tests.daemon_fixtures import teardown

            left = teardown(real)
            if left:
                print("ctrd left behind:", left, file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"daemon: {'in-process fake (tests/integration/ctrctl_fake.py)' if fake else 'ctrd at ' + address}")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f} (2 cores: figures above ~1 are noisy)")
    print(f"{'command':34} {'mean ms':>9} {'± sd':>7} {'median':>7} {'min':>7} {'max':>7}")
    for name, r in results.items():
        print(f"{name:34} {r['mean']:9.1f} {r['stddev']:7.1f} {r['median']:7.1f} {r['min']:7.1f} {r['max']:7.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
