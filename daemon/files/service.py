"""The file operations' domain API: archive stat/get/put (`cp`), export, changes (`diff`), commit.

No gRPC in here. Tar streams are made and read in threads (tarwrite, extract) and cross to the
event loop through bounded queues (stream.py), so a 100 MB copy never sits in memory whole.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from ctrd import errdefs, timefmt
from daemon.containers.bundle import resolve_user
from daemon.containers.manager import ContainerManager
from daemon.containers.record import Container
from daemon.containers.state import Status
from daemon.files import changes as changes_mod
from daemon.files.extract import extract
from daemon.files.paths import Located, PathStat, locate
from daemon.files.resolve import fs_readlink, open_parts
from daemon.files.rootfs import RootfsUse
from daemon.files.stream import QueueReader, feed, produce
from daemon.files.tarwrite import TreeWriter
from daemon.images import reference
from daemon.images.config import ImageConfig, apply_changes
from daemon.images.store import ImageStore
from daemon.layers.overlay2 import LayerStore

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _write_located(root_fd: int, loc: Located, out: BinaryIO) -> None:
    w = TreeWriter(out)
    if loc.st is not None and loc.stat.is_dir:
        fd = open_parts(root_fd, loc.parts, _DIR)
        try:
            w.add_dir(fd, loc.name, os.fstat(fd))
        finally:
            os.close(fd)
    else:
        parent = open_parts(root_fd, loc.parts[:-1], _DIR)
        try:
            w.add(parent, loc.parts[-1], loc.name)
        finally:
            os.close(parent)
    w.close()


class Files:
    def __init__(self, manager: ContainerManager, images: ImageStore, layers: LayerStore) -> None:
        self.m = manager
        self.images = images
        self.layers = layers
        self.rootfs = RootfsUse(manager)

    # ---------------------------------------------------------------- archive (cp)
    async def stat(self, ref: str, path: str) -> PathStat:
        async with self.rootfs.open(ref, live=True) as (_c, root):
            loc = await asyncio.to_thread(locate, root, path, fs_readlink(root), ref)
        return loc.stat

    async def archive(self, ref: str, path: str) -> AsyncIterator[PathStat | bytes]:
        """The stat of `path`, then the tar of it (docker's GET /containers/{id}/archive)."""
        async with self.rootfs.open(ref, live=True) as (c, root):
            loc = await asyncio.to_thread(locate, root, path, fs_readlink(root), ref)
            yield loc.stat
            async for chunk in produce(lambda out: _write_located(root, loc, out)):
                yield chunk
        self.m.monitor.emit(c, "archive-path")

    async def put(self, ref: str, path: str, chunks: AsyncIterator[bytes], *, no_overwrite_dir_non_dir: bool = False,
                  copy_uid_gid: bool = False) -> None:
        """Extract the tar in `chunks` into directory `path` (docker's PUT /containers/{id}/archive)."""
        if not path:
            raise errdefs.InvalidArgument("path: must not be empty")
        async with self.rootfs.open(ref, live=True) as (c, root):
            try:  # the whole path resolved (a trailing "/"): the destination must be a directory
                loc = await asyncio.to_thread(locate, root, path.rstrip("/") + "/", fs_readlink(root), ref)
            except errdefs.NotFound:
                raise errdefs.NotFound(f"Could not find the file {path} in container {ref}") from None
            except errdefs.InvalidArgument as exc:
                if exc.message.endswith("not a directory"):
                    raise errdefs.InvalidArgument(f"extraction point is not a directory: {path}") from None
                raise
            if not loc.stat.is_dir:
                raise errdefs.InvalidArgument("extraction point is not a directory")
            if not in_writable_mount(c, "/" + "/".join(loc.parts)) and c.host_config.read_only_rootfs:
                raise errdefs.FailedPrecondition("container rootfs is marked read-only")
            owner = None
            if copy_uid_gid:
                uid, gid, _ = await asyncio.to_thread(resolve_user, _proc_root(root), c.config.user)
                owner = (uid, gid)
            reader = QueueReader()
            consumer = asyncio.ensure_future(asyncio.to_thread(
                _extract_then_drain, root, loc.parts, path, reader, no_overwrite_dir_non_dir, owner))
            await feed(chunks, reader, consumer)
            await consumer
        self.m.monitor.emit(c, "extract-to-dir")

    # ---------------------------------------------------------------- export
    async def export(self, ref: str) -> AsyncIterator[bytes]:
        async with self.rootfs.open(ref) as (c, root):

            def write(out: BinaryIO) -> None:
                w = TreeWriter(out)
                w.add_dir(root, "", os.fstat(root), header=False)
                w.close()

            async for chunk in produce(write):
                yield chunk
        self.m.monitor.emit(c, "export")

    # ---------------------------------------------------------------- diff
    def _layer_dirs(self, c: Container) -> tuple[str, list[str]]:
        upper = str(self.layers.diff_dir(c.id))
        if not os.path.isdir(upper):
            raise errdefs.NotFound(f"container {c.id}: no read-write layer")
        return upper, [str(self.layers.diff_dir(p)) for p in self.layers.parents(c.id)]

    async def changes(self, ref: str) -> list[tuple[str, int]]:
        c = self.m.get(ref)
        upper, lowers = self._layer_dirs(c)
        return await asyncio.to_thread(changes_mod.rw_changes, upper, lowers)

    # ---------------------------------------------------------------- commit
    async def commit(self, ref: str, repo_tag: str = "", comment: str = "", author: str = "",
                     changes: Sequence[str] = (), pause: bool = True) -> str:
        c = self.m.get(ref)
        tags = [reference.normalize(repo_tag)] if repo_tag else []
        apply_changes(ImageConfig(), list(changes))  # a bad --change fails before anything is done
        paused = False
        if pause and c.status is Status.RUNNING:
            await self.m.pause(c.id)
            paused = True
        try:
            upper, _ = self._layer_dirs(c)
            image_id = await asyncio.to_thread(self._commit_sync, c, upper, tags, comment, author, list(changes))
        finally:
            if paused:
                await self.m.resume(c.id)
        self.m.monitor.emit(c, "commit", comment=comment)
        return image_id

    def _commit_sync(self, c: Container, upper: str, tags: list[str], comment: str, author: str,
                     changes: list[str]) -> str:
        r, w = os.pipe()
        failure: list[BaseException] = []

        def write() -> None:
            try:
                with os.fdopen(w, "wb") as out:
                    fd = os.open(upper, _DIR)
                    try:
                        tw = TreeWriter(out, whiteouts=True)
                        tw.add_dir(fd, "", os.fstat(fd), header=False)
                        tw.close()
                    finally:
                        os.close(fd)
            except BaseException as exc:
                failure.append(exc)

        def make_config(raw: dict[str, Any]) -> dict[str, Any]:
            return _commit_config(raw, c, comment, author, changes)

        t = threading.Thread(target=write, name=f"commit-{c.id[:12]}", daemon=True)
        t.start()
        try:
            with os.fdopen(r, "rb") as src:
                image_id = self.images.commit_layer(c.image_id, src, make_config, tags)
        finally:
            t.join()
        if failure:
            raise errdefs.Internal(f"commit {c.id}: reading the read-write layer: {failure[0]}")
        return image_id


def in_writable_mount(c: Container, dest: str) -> bool:
    """docker's checkIfPathIsInAVolume: is `dest` (canonical) under a bind or volume mount? A
    read-only one refuses the copy ("mounted volume is marked read-only")."""
    inside = False
    for m in c.host_config.mounts:
        if m.type in ("bind", "volume") and (dest == m.target or dest.startswith(m.target.rstrip("/") + "/")):
            if m.read_only:
                raise errdefs.FailedPrecondition("mounted volume is marked read-only")
            inside = True
    return inside


def _proc_root(root_fd: int) -> Path:
    return Path(f"/proc/self/fd/{root_fd}")


def _extract_then_drain(root: int, dest: list[str], shown: str, reader: QueueReader, no_overwrite: bool,
                        owner: tuple[int, int] | None) -> None:
    try:
        extract(root, dest, shown, reader, no_overwrite_dir_non_dir=no_overwrite, owner=owner)  # type: ignore[arg-type]
    finally:
        reader.drain()


def _commit_config(raw: dict[str, Any], c: Container, comment: str, author: str, changes: list[str]) -> dict[str, Any]:
    """docker's commit: the container's config (image defaults merged in at create) with --change
    applied, the parent's history plus one entry, the parent's architecture and os."""
    parent_cfg = raw.get("config") or {}
    base = ImageConfig(
        env=list(c.config.env), cmd=list(c.config.cmd), entrypoint=list(c.config.entrypoint),
        working_dir=c.config.working_dir, user=c.config.user,
        stop_signal=parent_cfg.get("StopSignal") or ("" if c.config.stop_signal == "SIGTERM" else c.config.stop_signal),
        exposed_ports=list(c.config.exposed_ports), labels=dict(c.config.labels),
        volumes=list((parent_cfg.get("Volumes") or {}).keys()),
    )
    cfg = apply_changes(base, changes)
    created = timefmt.now()
    history = list(raw.get("history") or [])
    entry: dict[str, Any] = {"created": created, "created_by": " ".join([*c.config.entrypoint, *c.config.cmd])}
    if author:
        entry["author"] = author
    if comment:
        entry["comment"] = comment
    history.append(entry)
    out: dict[str, Any] = {
        "architecture": raw.get("architecture") or "amd64",
        "os": raw.get("os") or "linux",
        "config": {k: v for k, v in cfg.to_docker().items() if v},
        "container": c.id,
        "created": created,
        "history": history,
    }
    if raw.get("variant"):
        out["variant"] = raw["variant"]
    if author:
        out["author"] = author
    if comment:
        out["comment"] = comment
    return out
