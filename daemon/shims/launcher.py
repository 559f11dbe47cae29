"""The daemon's handle on the pre-warmed shim launcher process (`shimd.launch.launcher`).

A fresh interpreter per shim costs ~100 ms and ~30 MB, so the daemon starts ONE launcher
process (`python -m shimd.launch.launcher --exec-root DIR`) that imports shimd and the runtime,
calls gc.freeze() (so forked shims share those pages instead of dirtying them) and then forks a
shim per request. Wire: one JSON line per request on the launcher's stdin ({"id": ...}), one
JSON line per answer on its stdout ({"address", "pid", "state_dir"} or {"code", "message"}).
If the launcher is gone, `launch` falls back to exec'ing `ctrd-shim start`, which forks the same way.

The daemon reaches the shim code only through these processes: it imports nothing from shimd.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctrd import errdefs

CLOSE_TIMEOUT = 5.0
LAUNCHER_MODULE = "shimd.launch.launcher"
SHIM_MODULE = "shimd.main"


@dataclass(frozen=True, slots=True)
class ShimHandle:
    """What a launch returns to the daemon."""

    address: str  # unix:///<exec_root>/shims/<id>/shim.sock
    pid: int
    state_dir: Path


def _handle(obj: dict[str, Any]) -> ShimHandle:
    if "code" in obj:
        raise errdefs.from_code(str(obj["code"]), str(obj.get("message", "")), str(obj.get("reason", "")))
    return ShimHandle(str(obj["address"]), int(obj["pid"]), Path(obj["state_dir"]))


class ShimLauncher:
    def __init__(self, exec_root: Path, *, python: str = sys.executable, seccomp_warm: Path | None = None) -> None:
        """`seccomp_warm`: a JSON list of OCI linux.seccomp objects the launcher compiles and
        keeps before it forks (the daemon's default profile)."""
        self.exec_root = Path(exec_root)
        self._python = python
        self._seccomp_warm = seccomp_warm
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            self._python, "-m", LAUNCHER_MODULE, "--exec-root", str(self.exec_root),
            *(["--seccomp-warm", str(self._seccomp_warm)] if self._seccomp_warm is not None else []),
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
            self._python, "-m", SHIM_MODULE, "start", "--id", container_id, "--exec-root", str(self.exec_root),
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
