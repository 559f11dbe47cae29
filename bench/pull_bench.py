"""`python -m bench.pull_bench`: pulling a multi-layer image from a loopback registry, ctrd vs peers.

One run, as root: starts Debian's docker-registry on 127.0.0.1 with a temp storage dir, builds a
3-layer image (~200 MB of incompressible data by default, so the blobs are as big as the layers),
puts it there with skopeo, then times, each in the same run and against the same registry:

- `ctrd pull` — ctrd's distribution code over a fresh image store (download, verify, extract,
  register: everything `ctrctl pull` makes the daemon do), in a child process whose peak RSS
  growth over its start is reported as well;
- `ctrd download only` — the same pull's blob fetching into the content store (what skopeo does);
- `skopeo copy` to an OCI directory (download and verify, no extraction);
- `docker pull` when a dockerd is running and answers `docker info` (skipped otherwise).

Writes bench/results/pull.{json,md}. Never installs anything; a missing peer is reported skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from daemon.images.archive import HOST_ARCH
from tests import registry_env as renv

RESULTS = Path(__file__).resolve().parent / "results"
_CHILD = r"""
import asyncio, json, sys, time
from pathlib import Path
from ctrd.dockerconfig import Credentials
from daemon.distribution.service import Distribution
from daemon.images.store import ImageStore
from daemon.layers.overlay2 import LayerStore
root, ref, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
def status_kb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
store = ImageStore(root, LayerStore(root / "overlay2"))
dist = Distribution(store, root)
before = status_kb("VmRSS")
t0 = time.perf_counter()
async def download_only():
    from daemon.distribution import names, platforms
    from daemon.distribution.client import Registry, new_session
    from daemon.distribution.pull import resolve
    r = names.parse(ref)
    async with new_session(dist.opts) as s:
        reg = Registry(s, r.host, Credentials(), dist.opts)
        m, _, _ = await resolve(reg, r, platforms.host())
        await asyncio.gather(*(dist.fetcher.fetch(reg, r.path, d) for d in [m.config, *m.layers]))
if mode == "pull":
    asyncio.run(dist.pull(ref, "", Credentials(), lambda e: None))
else:
    asyncio.run(download_only())
took = time.perf_counter() - t0
# VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec
peak = status_kb("VmHWM")
print(json.dumps({"seconds": took, "rss_before_kb": before, "peak_rss_kb": peak}))
"""


def _layers(total_mb: int, count: int) -> list[bytes]:
    sizes = [total_mb * w // sum(range(1, count + 1)) for w in range(count, 0, -1)]  # 1/2, 1/3, 1/6 for 3
    return [renv.text_layer((f"data/layer{i}.bin", os.urandom(mb << 20))) for i, mb in enumerate(sizes)]


def _time(argv: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env, timeout=1800)
    return time.perf_counter() - t0


def _ctrd(work: Path, ref: str, mode: str) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="pb-", dir=work))
    try:
        out = subprocess.run([sys.executable, "-c", _CHILD, str(root), ref, mode], check=True, capture_output=True,
                             text=True, timeout=1800).stdout
        res: dict[str, Any] = json.loads(out)
        res["rss_growth_mb"] = round((res["peak_rss_kb"] - res["rss_before_kb"]) / 1024, 1)
        return res
    finally:
        # layer dirs made as root with odd modes: plain rmtree is enough (no mounts were made)
        shutil.rmtree(root, ignore_errors=True)


def _docker_ready() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pull_bench", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--size-mb", type=int, default=200, help="total layer data (default 200)")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--runs", type=int, default=3, help="timed runs per row (the median is reported)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    missing = [t for t in ("docker-registry", "skopeo") if not shutil.which(t)]
    if missing:
        print(f"missing: {', '.join(missing)} (apt-get install docker-registry skopeo)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="ctrb-pull-", dir="/var/tmp"))
    reg = None
    rows: dict[str, Any] = {}
    try:
        reg = renv.RegistryProc.start(work / "registry")
        layout = renv.make_layout(work / "layout", [renv.ImageSpec(HOST_ARCH, _layers(args.size_mb, args.layers),
                                                                   compression="gzip")], "t")
        ref = f"{reg.host}/bench/big:1"
        renv.skopeo_copy(f"oci:{layout}:t", f"docker://{ref}")
        shutil.rmtree(layout)
        blob_bytes = sum(b.stat().st_size for b in (work / "registry" / "data").rglob("data") if b.is_file())

        def med(xs: list[float]) -> float:
            return sorted(xs)[len(xs) // 2]

        pulls = [_ctrd(work, ref, "pull") for _ in range(args.runs)]
        rows["ctrd pull (download+verify+extract+register)"] = {
            "seconds": med([r["seconds"] for r in pulls]), "rss_growth_mb": max(r["rss_growth_mb"] for r in pulls)}
        dls = [_ctrd(work, ref, "download") for _ in range(args.runs)]
        rows["ctrd download only (content store)"] = {
            "seconds": med([r["seconds"] for r in dls]), "rss_growth_mb": max(r["rss_growth_mb"] for r in dls)}
        times = []
        for i in range(args.runs):
            dest = work / f"skopeo-{i}"
            times.append(_time(["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false",
                                f"docker://{ref}", f"oci:{dest}:t"]))
            shutil.rmtree(dest)
        rows["skopeo copy → OCI dir (download+verify)"] = {"seconds": med(times)}
        if _docker_ready():
            times = []
            for _ in range(args.runs):
                subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)
                times.append(_time(["docker", "pull", "-q", ref]))
            subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)
            rows["docker pull"] = {"seconds": med(times)}
        else:
            rows["docker pull"] = {"skipped": "no dockerd answering `docker info` on this machine"}
    finally:
        if reg is not None:
            reg.stop()
        shutil.rmtree(work, ignore_errors=True)
    result = {"image": {"layers": args.layers, "data_mb": args.size_mb, "blob_mb": round(blob_bytes / 2**20, 1)},
              "runs": args.runs, "cpus": os.cpu_count(), "rows": rows,
              "note": "loopback registry (docker-registry 2.8, plain HTTP); median of runs; RSS growth = peak "
                      "RSS of the pulling process minus its RSS before the pull"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pull.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"Pull of a {args.layers}-layer image ({result['image']['blob_mb']} MB of blobs) from a loopback "
             f"docker-registry, median of {args.runs}:", "", "| what | seconds | RSS growth |", "|---|---|---|"]
    for name, r in rows.items():
        if "skipped" in r:
            lines.append(f"| {name} | skipped: {r['skipped']} | |")
        else:
            rss = f"{r['rss_growth_mb']} MB" if "rss_growth_mb" in r else ""
            lines.append(f"| {name} | {r['seconds']:.2f} | {rss} |")
    (args.out / "pull.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
