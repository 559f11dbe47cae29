"""`python -m bench.files_bench`: `cp` of a 100 MB file and `commit` of a 100 MB change, ctrd vs docker.

One run, as root: a ctrd of its own (temp root, exec-root, socket, bridge; tests/daemon_fixtures)
and a private Debian dockerd (own data-root, socket and bridge; tests/dockerd_env), the same busybox
image in both (`ctrctl save` → `docker load`). Interleaved run by run, each timed from fork to exit
of the CLI (so the figures include the CLIs' own start-up):

- `cp` host → container of a 100 MB incompressible file (a created container: docker and ctrd both
  mount its root for the copy);
- `cp` container → host of the same file;
- `commit` of a stopped container whose read-write layer holds a 100 MB file;
- `cp` container → host of a small file in a stopped container's named volume (docker mounts the
  volume for the copy; ctrd binds it in a helper's mount namespace: this row is that overhead).

Writes bench/results/files.{json,md}. Never installs anything; without dockerd the docker rows are
skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.daemon_fixtures import start_daemon, teardown
from tests.dockerd_env import Docker, own_bridge, private_dockerd

RESULTS = Path(__file__).resolve().parent / "results"
_SCRIPT = Path(sys.executable).parent / "ctrctl"
CTRCTL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "ctrctl.main"]


def _timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - t0


def _row(samples: list[float]) -> dict[str, Any]:
    return {"median_s": statistics.median(samples), "min_s": min(samples), "runs": len(samples)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.files_bench")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--size-mb", type=int, default=100)
    p.add_argument("--no-docker", action="store_true")
    args = p.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="ctrdf-", dir="/tmp"))
    payload = base / "big.bin"
    with open(payload, "wb") as f:
        for _ in range(args.size_mb):
            f.write(os.urandom(1 << 20))
    (base / "c").mkdir()
    d = start_daemon(base / "c")
    rows: dict[str, Any] = {}
    try:
        ctl = [*CTRCTL, "-a", d.address]
        subprocess.run([*ctl, "run", "--rm", "--network", "none", "busybox", "true"], check=True, capture_output=True)
        with _maybe_docker(base, not args.no_docker and bool(shutil.which("dockerd"))) as docker:
            if docker is not None:
                tar = base / "bb.tar"
                subprocess.run([*ctl, "save", "-o", str(tar), "busybox"], check=True, capture_output=True)
                docker("load", "-i", str(tar))
            fill = f"head -c {args.size_mb * 1024 * 1024} /dev/urandom > /rw.bin"
            c_cp = _out([*ctl, "create", "--network", "none", "busybox", "true"])
            c_rw = _out([*ctl, "run", "-d", "--network", "none", "busybox", "sh", "-c", fill])
            subprocess.run([*ctl, "wait", c_rw], check=True, capture_output=True)
            vol_fill = ["--network", "none", "-v", "benchvol:/v", "busybox", "sh", "-c", "echo small > /v/small"]
            c_vol = _out([*ctl, "run", "-d", *vol_fill])
            subprocess.run([*ctl, "wait", c_vol], check=True, capture_output=True)
            d_cp = d_rw = d_vol = ""
            if docker is not None:
                d_cp = docker("create", "--network", "none", "busybox", "true").stdout.strip()
                d_rw = docker("run", "-d", "--network", "none", "busybox", "sh", "-c", fill).stdout.strip()
                docker("wait", d_rw)
                d_vol = docker("run", "-d", *vol_fill).stdout.strip()
                docker("wait", d_vol)
            dk = ["docker", "-H", f"unix://{docker.socket}"] if docker is not None else []
            samples: dict[str, list[float]] = {}
            out = base / "out"
            for i in range(args.runs):
                samples.setdefault("ctrd cp in", []).append(_timed([*ctl, "cp", str(payload), f"{c_cp}:/big{i}"]))
                if dk:
                    samples.setdefault("docker cp in", []).append(_timed([*dk, "cp", str(payload), f"{d_cp}:/big{i}"]))
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                samples.setdefault("ctrd cp out", []).append(_timed([*ctl, "cp", f"{c_cp}:/big{i}", str(out / "c")]))
                if dk:
                    samples.setdefault("docker cp out", []).append(_timed([*dk, "cp", f"{d_cp}:/big{i}", str(out / "d")]))
                samples.setdefault("ctrd cp out (created, small, no mounts)", []).append(
                    _timed([*ctl, "cp", f"{c_cp}:/etc/group", str(out / "cg")]))
                if dk:
                    samples.setdefault("docker cp out (created, small, no mounts)", []).append(
                        _timed([*dk, "cp", f"{d_cp}:/etc/group", str(out / "dg")]))
                samples.setdefault("ctrd cp out (stopped, volume)", []).append(
                    _timed([*ctl, "cp", f"{c_vol}:/v/small", str(out / "cv")]))
                if dk:
                    samples.setdefault("docker cp out (stopped, volume)", []).append(
                        _timed([*dk, "cp", f"{d_vol}:/v/small", str(out / "dv")]))
                samples.setdefault("ctrd commit", []).append(_timed([*ctl, "commit", c_rw, f"bench:{i}"]))
                if dk:
                    samples.setdefault("docker commit", []).append(_timed([*dk, "commit", d_rw, f"bench:{i}"]))
            rows = {k: _row(v) for k, v in samples.items()}
    finally:
        problems = teardown(d)
        shutil.rmtree(base, ignore_errors=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "size_mb": args.size_mb, "rows": rows,
              "leftovers": problems}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "files.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# cp and commit, {args.size_mb} MB, {report['date']}", "",
             "| what | median s | min s | runs |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {v['median_s']:.3f} | {v['min_s']:.3f} | {v['runs']} |" for k, v in rows.items()]
    (RESULTS / "files.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if problems else 0


def _out(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


class _maybe_docker:
    """A private dockerd with its own bridge, or None when docker is not wanted or not installed."""

    def __init__(self, base: Path, wanted: bool) -> None:
        self.base, self.wanted = base / f"d{secrets.token_hex(2)}", wanted
        self._stack: Any = None

    def __enter__(self) -> Docker | None:
        if not self.wanted:
            return None
        from contextlib import ExitStack

        self.base.mkdir()
        self._stack = ExitStack()
        bridge, _ = self._stack.enter_context(own_bridge())
        return self._stack.enter_context(private_dockerd(self.base, bridge, f"ctrdf-docker-{self.base.name}"))

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()


if __name__ == "__main__":
    sys.exit(main())
