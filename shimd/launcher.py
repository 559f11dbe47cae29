"""Shim launch: the daemon-side `ShimLauncher` and the pre-warmed launcher process behind it.

A fresh interpreter per shim costs ~100 ms and ~30 MB, so the daemon starts ONE launcher
process (`python -m shimd.launcher --exec-root DIR`) that imports shimd and the runtime, calls
gc.freeze() (so forked shims share those pages instead of dirtying them) and then forks a shim
per request. Wire: one JSON line per request on the launcher's stdin ({"id": ...}), one JSON line
per answer on its stdout ({"address", "pid", "state_dir"} or {"code", "message"}).
If the launcher is gone, `launch` falls back to exec'ing `ctrd-shim start`, which forks the same way.

This module is imported by the daemon: keep its top level light (no runtime, no shim server).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from ctrd import errdefs
from shimd.handle import ShimHandle

__all__ = ["ShimHandle", "ShimLauncher"]

CLOSE_TIMEOUT = 5.0


def _handle(obj: dict[str, Any]) -> ShimHandle:
    if "code" in obj:
        raise errdefs.from_code(str(obj["code"]), str(obj.get("message", "")), str(obj.get("reason", "")))
    return ShimHandle(str(obj["address"]), int(obj["pid"]), Path(obj["state_dir"]))


class ShimLauncher:
    def __init__(self, exec_root: Path, *, python: str = sys.executable) -> None:
        self.exec_root = Path(exec_root)
        self._python = python
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            self._python, "-m", "shimd.launcher", "--exec-root", str(self.exec_root),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, start_new_session=True,
        )
        assert self._proc.stdout is not None
        line = await self._proc.stdout.readline()  # "ready" once imports and gc.freeze are done
        if line.strip() != b'{"ready": true}':
            await self.close()
            raise errdefs.Unavailable(f"shim launcher failed to start: {line!r}")

    async def launch(self, container_id: str) -> ShimHandle:
        async with self._lock:
            proc = self._proc
            if proc is not None and proc.returncode is None:
                assert proc.stdin is not None and proc.stdout is not None
                try:
                    proc.stdin.write(json.dumps({"id": container_id}).encode() + b"\n")
                    await proc.stdin.drain()
                    line = await proc.stdout.readline()
                except (ConnectionError, OSError):
                    line = b""
                if line:
                    return _handle(json.loads(line))
        return await self._exec_fallback(container_id)

    async def _exec_fallback(self, container_id: str) -> ShimHandle:
        proc = await asyncio.create_subprocess_exec(
            self._python, "-m", "shimd.main", "start", "--id", container_id, "--exec-root", str(self.exec_root),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0 or not out.strip():
            with contextlib.suppress(ValueError):
                return _handle(json.loads(out))
            raise errdefs.Internal(f"ctrd-shim start {container_id} failed: {err.decode(errors='replace').strip()}")
        return _handle(json.loads(out))

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), CLOSE_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def launch_result(exec_root: Path, container_id: str) -> dict[str, Any]:
    """Fork one shim; the answer as a JSON-able dict (an error becomes {"code", "message"})."""
    from shimd.fork import fork_shim

    try:
        h = fork_shim(exec_root, container_id)
    except errdefs.CtrdError as err:
        return {"code": err.code, "message": err.message, "reason": err.reason}
    except OSError as exc:
        return {"code": "internal", "message": f"launch shim {container_id}: {exc}"}
    return {"address": h.address, "pid": h.pid, "state_dir": str(h.state_dir)}


def prewarm() -> None:
    """Import everything a shim runs, then freeze the GC so children share those pages."""
    import gc
    import importlib

    for mod in ("shimd.shim", "shimd.fork", "shimd.runc", "shimd.inprocess", "shimd.forked", "shimd.ports"):
        importlib.import_module(mod)
    with contextlib.suppress(ImportError):
        importlib.import_module("runtime.container")
    from shimd.warmup import warm_up

    warm_up()
    from shimd.ballast import fill, mark_mergeable

    fill()  # collects first (warm-up garbage, free lists), then holds the free small blocks
    gc.freeze()
    mark_mergeable()


def configure_logging() -> None:
    """Shim logging (to shim.log, the shim's stderr): set up by whoever forks shims, before the fork."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s ctrd-shim[%(process)d] %(message)s")


def serve_launcher(exec_root: Path) -> int:
    import signal

    configure_logging()
    prewarm()
    # shims are this process's children until it exits: let the kernel reap those that end
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    from shimd.fork import launch_forked

    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    # Kept tiny on purpose: each page this loop writes between two forks is copied out of the
    # shims forked before it (see launch_forked); the child parses the request, not us.
    for line in sys.stdin.buffer:
        out.write(launch_forked(exec_root, line))
        out.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="shimd.launcher", description="pre-warmed ctrd-shim launcher")
    p.add_argument("--exec-root", required=True, type=Path)
    args = p.parse_args(argv)
    return serve_launcher(args.exec_root)


if __name__ == "__main__":
    sys.exit(main())
