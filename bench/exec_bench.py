"""Execs, ctrd beside docker in the same run (section `exec`), on one running `sleep` container
per engine:

- `exec <c> true` p50 (the CLI: create + attached start + the exit code);
- stdin→stdout throughput of 256 MiB through `exec -i <c> cat` (MiB/s, the CLI's pipes).

The engines (ctrctl against the bench's ctrd, docker against its private dockerd) are the attach
section's (bench.attach_bench).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from typing import Any

from bench.attach_bench import _CHUNK, _Engine, _engines, _p50
from bench.context import Context
from bench.rootfs import IMAGE_REF

THROUGHPUT_BYTES = 256 << 20


def _throughput(e: _Engine, cid: str, total: int = THROUGHPUT_BYTES) -> dict[str, float]:
    proc = subprocess.Popen([*e.cli, "exec", "-i", cid, "cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=e.env)
    assert proc.stdin is not None and proc.stdout is not None
    stdin = proc.stdin

    def feed() -> None:
        try:
            for _ in range(total // len(_CHUNK)):
                stdin.write(_CHUNK)
        finally:
            stdin.close()

    t0 = time.perf_counter()
    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    got = 0
    out_fd = proc.stdout.fileno()
    while data := os.read(out_fd, 1 << 20):
        got += len(data)
    rc = proc.wait(timeout=600)
    elapsed = time.perf_counter() - t0
    writer.join(10)
    if rc != 0 or got != total:
        raise RuntimeError(f"{e.name}: exec -i cat of {total >> 20} MiB: exit {rc}, {got} of {total} bytes back")
    return {"seconds": round(elapsed, 3), "mib_per_s": round(total / (1 << 20) / elapsed, 1)}


def measure(ctx: Context) -> dict[str, Any]:
    engines, skipped = _engines(ctx)
    out: dict[str, Any] = {name: {"skipped": why} for name, why in skipped.items()}
    for e in engines:
        row: dict[str, Any] = {}
        try:
            cid = e.run("run", "-d", "--network", "none", IMAGE_REF, "sleep", "3600").stdout.decode().strip()
        except Exception as exc:
            out[e.name] = {"skipped": f"failed: {exc}"}
            continue
        try:
            try:
                def exec_true(e: _Engine = e, cid: str = cid) -> object:
                    return e.run("exec", cid, "true")

                row["exec_true"] = _p50(ctx, exec_true)
                print(f"  {e.name:<7} exec_true  p50 {row['exec_true']['summary']['p50']:8.1f} ms", flush=True)
            except Exception as exc:  # one broken row must not hide the others
                row["exec_true"] = {"skipped": f"failed: {exc}"}
            try:
                row["exec_i_cat"] = _throughput(e, cid)
                print(f"  {e.name:<7} exec_i_cat {row['exec_i_cat']}", flush=True)
            except Exception as exc:
                row["exec_i_cat"] = {"skipped": f"failed: {exc}"}
                print(f"  {e.name:<7} exec_i_cat failed: {exc}", flush=True)
        finally:
            subprocess.run([*e.cli, "rm", "-f", cid], capture_output=True, env=e.env, timeout=60, check=False)
        out[e.name] = row
    return out
