"""Bridge network setup + teardown per container (standalone; root).

    python -m bench.network_bench [-n 200] [--json out.json]

Measures what the daemon waits for at start and at stop: NetworkManager.setup(mode="bridge")
(netns + nsfs bind mount + veth pair on the bridge + address, MAC, default route + the lease on
disk) and NetworkManager.teardown (unmount + unlink + lease release). Reported separately: how long
the kernel takes to take the veth pair down after teardown returns (asynchronous netns cleanup,
not on the daemon's path). Uses its own bridge (ctrdb<rand>) and a free 10.250.x.0/24, and
removes both at the end. Traffic: none.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from daemon.network.firewall import Firewall
from daemon.network.manager import NetworkManager


def _free_subnet() -> str:
    routed = []
    with open("/proc/net/route") as f:
        for line in list(f)[1:]:
            p = line.split()
            dst, mask = (ipaddress.IPv4Address(bytes.fromhex(x)[::-1]) for x in (p[1], p[7]))
            if int(mask):
                routed.append(ipaddress.IPv4Network(f"{dst}/{mask}", strict=False))
    for _ in range(200):
        net = ipaddress.IPv4Network(f"10.250.{secrets.randbelow(256)}.0/24")
        if not any(net.overlaps(r) for r in routed):
            return str(net)
    raise SystemExit("no free 10.250.x.0/24")


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds (user space and kernel work done for it)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _summary(xs: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_pct(xs, 0.5) * 1e3, 3),
        "p90_ms": round(_pct(xs, 0.9) * 1e3, 3),
        "mean_ms": round(statistics.fmean(xs) * 1e3, 3),
        "min_ms": round(min(xs) * 1e3, 3),
    }


async def run(n: int, warmup: int, firewall: bool = True) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="ctrdb-", dir="/tmp"))
    bridge = "ctrdb" + secrets.token_hex(2)
    # with ctrd's firewall chains, as the daemon runs by default (the rules are per network, so
    # they are set up by the first setup and removed with the bridge at the end)
    nm = NetworkManager(tmp / "root", tmp / "run", bridge=bridge, subnet=_free_subnet(),
                        firewall=Firewall(tmp / "root") if firewall else None)
    await nm.start()
    setup: list[float] = []
    teardown: list[float] = []
    total: list[float] = []
    gone: list[float] = []
    cpu0 = hcpu0 = 0.0
    helper = int(getattr(nm._ops, "pid", 0))
    try:
        for i in range(warmup + n):
            if i == warmup:
                cpu0 = _cpu_s(os.getpid()) + _cpu_s(helper)
                hcpu0 = _cpu_s(helper)
            cid = f"{i:012x}" + "0" * 52
            t0 = time.perf_counter()
            s = await nm.setup(cid, "bridge", hostname="bench")
            t1 = time.perf_counter()
            await nm.teardown(cid, s)
            t2 = time.perf_counter()
            if i >= warmup:
                setup.append(t1 - t0)
                teardown.append(t2 - t1)
                total.append(t2 - t0)
            if i % 10 == 0:  # sample how long the kernel needs to remove the pair (off the hot path)
                while os.path.exists(f"/sys/class/net/{s.veth_host}"):
                    await asyncio.sleep(0.0005)
                if i >= warmup:
                    gone.append(time.perf_counter() - t2)
        cpu = _cpu_s(os.getpid()) + _cpu_s(helper) - cpu0
        hcpu = _cpu_s(helper) - hcpu0
        await nm.settle()
    finally:
        await nm.close(remove_bridge=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "what": "bridge network setup + teardown per container (NetworkManager, helper process, pyroute2)",
        "iterations": n,
        "firewall": firewall,
        "setup": _summary(setup),
        "teardown": _summary(teardown),
        "setup_plus_teardown": _summary(total),
        "setup_plus_teardown_samples_ms": [round(x * 1e3, 4) for x in total],
        "kernel_veth_removal_after_teardown": _summary(gone) if gone else {},
        # CPU time per cycle of this process + the helper: less sensitive to other load than wall time
        "cpu_ms_per_cycle_daemon_plus_helper": round(cpu / n * 1e3, 3),
        "cpu_ms_per_cycle_helper": round(hcpu / n * 1e3, 3),
        "target_p50_ms": 10.0,
        "loadavg_at_end": os.getloadavg()[0],  # other work on the 2 cores skews every figure
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-firewall", action="store_true", help="without ctrd's iptables chains (--iptables=false)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("network_bench needs root", file=sys.stderr)
        return 2
    res = asyncio.run(run(args.n, args.warmup, firewall=not args.no_firewall))
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
