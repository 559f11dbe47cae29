"""The shims as the daemon uses them: launch through the launcher, reconnect after a daemon
restart, clean up after a shim that died."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

from ctrd import errdefs
from daemon.atomic import write_json_atomic
from daemon.paths import under
from daemon.shims.api import Exit
from daemon.shims.client import ShimClient
from daemon.shims.conn import ShimConn
from daemon.shims.launcher import ShimLauncher

CLEANUP_TIMEOUT = 30.0
RECONNECT_TIMEOUT = 5.0  # containerd's shim load budget


SECCOMP_WARM_FILE = "seccomp-warm.json"


class RealShims:
    def __init__(self, exec_root: Path, seccomp_profiles: Sequence[dict[str, Any]] = ()) -> None:
        """`seccomp_profiles`: OCI linux.seccomp objects most containers will get (the daemon's
        default): the launcher compiles them once, before it forks any shim."""
        self.exec_root = Path(exec_root)
        self._seccomp_profiles = list(seccomp_profiles)
        warm = self.exec_root / SECCOMP_WARM_FILE if self._seccomp_profiles else None
        self.launcher = ShimLauncher(self.exec_root, seccomp_warm=warm)
        self._ready: asyncio.Future[None] | None = None

    async def start(self, after: Awaitable[None] | None = None) -> None:
        """`after`: the launcher process starts once it is done (the daemon's recovery: the
        launcher's warm-up would take the CPU recovery needs; nothing there launches a shim)."""
        (self.exec_root / "shims").mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._seccomp_profiles:
            # rebuilt at every daemon start, read once by the launcher: no fsync
            write_json_atomic(self.exec_root / SECCOMP_WARM_FILE, self._seccomp_profiles, mode=0o600, durable=False)
        # a launch asked for before the launcher is ready (a restart policy during recovery)
        # waits for it instead of racing its "ready" line on the same pipe
        self._ready = asyncio.ensure_future(self._start_launcher(after))
        await asyncio.shield(self._ready)

    async def _start_launcher(self, after: Awaitable[None] | None) -> None:
        if after is not None:
            with contextlib.suppress(Exception):  # a failed recovery is reported by the daemon
                await after
        await self.launcher.start()

    async def close(self) -> None:
        await self.launcher.close()

    def state_dir(self, container_id: str) -> Path:
        return under(self.exec_root, "shims", container_id)  # not `/`: daemon/paths.py

    async def launch(self, container_id: str) -> ShimConn:
        if self._ready is not None and not self._ready.done():
            with contextlib.suppress(Exception):  # a launcher that failed: launch falls back to exec
                await asyncio.shield(self._ready)
        h = await self.launcher.launch(container_id)
        client = await ShimClient.connect(h.address)
        return ShimConn(client, h.pid)

    async def reconnect(self, container_id: str) -> ShimConn:
        sock = self.state_dir(container_id) / "shim.sock"
        if not sock.exists():
            raise errdefs.Unavailable(f"container {container_id}: no shim socket")
        client = await ShimClient.connect(f"unix://{sock}")
        try:
            async with asyncio.timeout(RECONNECT_TIMEOUT):
                return await ShimConn.recover(client)
        except (errdefs.CtrdError, TimeoutError) as exc:
            await client.close()
            raise errdefs.Unavailable(f"container {container_id}: shim does not answer: {exc}") from exc

    async def cleanup_dead(self, container_id: str) -> Exit:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shimd.main", "delete", "--id", container_id, "--exec-root", str(self.exec_root),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), CLEANUP_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise errdefs.Internal(f"ctrd-shim delete {container_id}: timed out")
        if proc.returncode != 0:
            raise errdefs.Internal(f"ctrd-shim delete {container_id}: {err.decode(errors='replace').strip()}")
        try:
            d = json.loads(out)
            return Exit(int(d.get("exit_status", 255)), float(d.get("exited_at") or time.time()))
        finally:
            shutil.rmtree(self.state_dir(container_id), ignore_errors=True)
