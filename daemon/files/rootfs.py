"""The root of a container for the length of one file operation, running or not.

`cp` of a running (or paused) container works on the root its process sees,
`/proc/<pid>/root`: its bind mounts, tmpfs and /etc/hosts, /etc/resolv.conf, /etc/hostname are
there, as docker shows them. For a created or stopped one, docker mounts its volumes, binds and
those files for the copy; here a helper process (daemon.files.mountns) binds them over the
merged root in a mount namespace of its own, and cp works on `/proc/<helper>/root/<merged>`
(volumes with driver options are mounted, held for the copy, as for a start). Export and the
rest work on the merged overlay alone (docker's export leaves volumes out).

For the merged root: a running container's root is mounted already; a created or stopped one is mounted for the
operation and unmounted after it — unless the container started meanwhile (its start found the
mount in place and uses it) or another operation still holds it. Mount and unmount happen under
the container's lock, as start and stop do theirs, so neither can interleave with them; the
operation itself runs on an fd of the root, which stays valid even if a stop detaches the mount.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ctrd import errdefs
from daemon.containers.manager import ContainerManager
from daemon.containers.record import Container
from daemon.containers.state import Status, is_alive

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class RootfsUse:
    def __init__(self, manager: ContainerManager) -> None:
        self.m = manager
        self.users: Counter[str] = Counter()
        self._cleanups: set[asyncio.Future[None]] = set()

    @asynccontextmanager
    async def open(self, ref: str, live: bool = False) -> AsyncIterator[tuple[Container, int]]:
        """(container, root fd); `live`: the running process's view when there is one."""
        c = self.m.get(ref)
        async with c.lock:
            _check(c, ref)
            fd = _process_root(c) if live else -1
        if fd >= 0:
            try:
                yield c, fd
            finally:
                os.close(fd)
            return
        async with c.lock:
            _check(c, ref)  # (again: it may have gone while the lock was free)
            merged = await asyncio.to_thread(self.m.layers.mount, c.id)
            self.users[c.id] += 1
        ns: MountNs | None = None
        held: list[str] = []
        fd = -1
        holder = f"cp-{c.id[:12]}-{secrets.token_hex(4)}"
        try:
            plan = copy_mounts(c, self.m.store.container_dir(c.id)) if live else []
            if plan:
                store = self.m.volumes.store
                for m in c.host_config.mounts:
                    if m.type == "volume":
                        await asyncio.to_thread(store.acquire, m.name, holder)
                        held.append(m.name)
                ns = await MountNs.start(str(merged), plan)
                fd = os.open(ns.root(str(merged)), _DIR)
            else:
                fd = os.open(merged, _DIR)
            yield c, fd
        finally:
            if fd >= 0:
                os.close(fd)
            # a client that goes away mid-stream cancels us here: the letting go runs to its end anyway
            done = asyncio.ensure_future(self._let_go(c, ns, held, holder))
            self._cleanups.add(done)
            done.add_done_callback(self._cleanups.discard)
            await asyncio.shield(done)

    async def _let_go(self, c: Container, ns: MountNs | None, held: list[str], holder: str) -> None:
        if ns is not None:
            await ns.close()
        for name in held:
            await asyncio.to_thread(self.m.volumes.store.release, name, holder)
        async with c.lock:
            self.users[c.id] -= 1
            if self.users[c.id] <= 0:
                del self.users[c.id]
                if not c.removed and not is_alive(c.status):
                    await asyncio.to_thread(self.m.layers.unmount, c.id)


def _check(c: Container, ref: str) -> None:
    if c.removed or c.status is Status.REMOVING:
        raise errdefs.NotFound(f"no such container: {ref}")


def _process_root(c: Container) -> int:
    """An fd of the container's process's root, or -1 (not running, or already gone). Called under
    the container's lock: its process cannot be reaped (and its pid reused) meanwhile."""
    if not is_alive(c.status) or c.state.pid <= 0:
        return -1
    try:
        return os.open(f"/proc/{c.state.pid}/root", _DIR)
    except OSError:
        return -1


def copy_mounts(c: Container, container_dir: Path) -> list[dict[str, Any]]:
    """What docker mounts for a copy, in mount order: the hostname/hosts/resolv.conf files the
    container's last start wrote (unless a user mount covers them), then its binds and volumes,
    parents before what nests in them. tmpfs mounts are left out (empty when not running)."""
    host = c.host_config
    users = {m.target for m in host.mounts}
    out: list[dict[str, Any]] = []
    for dest in ("/etc/resolv.conf", "/etc/hostname", "/etc/hosts"):
        src = container_dir / dest.rsplit("/", 1)[1]
        if dest not in users and src.is_file():
            out.append({"source": str(src), "target": dest, "ro": host.read_only_rootfs})
    binds = [m for m in host.mounts if m.type in ("bind", "volume") and m.source]
    for m in sorted(binds, key=lambda m: len([p for p in m.target.split("/") if p])):
        out.append({"source": m.source, "target": m.target, "ro": m.read_only})
    return out


class MountNs:
    """A running daemon.files.mountns helper, holding its mount namespace until close()."""

    START_TIMEOUT = 60.0  # a fresh interpreter on a loaded 2-core machine

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, root: str, mounts: list[dict[str, Any]]) -> MountNs:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "daemon.files.mountns",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, close_fds=True,
        )
        ns = cls(proc)
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps({"root": root, "mounts": mounts}).encode() + b"\n")
            await proc.stdin.drain()
            line = (await asyncio.wait_for(proc.stdout.readline(), cls.START_TIMEOUT)).decode(errors="replace")
        except BaseException:
            await ns.close()
            raise
        if line.strip() != "ok":
            await ns.close()
            raise errdefs.Internal("cp: " + (line.removeprefix("error ").strip() or "the mount helper failed"))
        return ns

    def root(self, merged: str) -> str:
        """`merged` as seen through the helper's namespace (its binds in place)."""
        return f"/proc/{self.proc.pid}/root{merged}"

    async def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()  # our own child, by its pid
            await self.proc.wait()
