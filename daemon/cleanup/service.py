"""Prune and disk usage over the container manager and the image store (no gRPC in here)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ctrd import errdefs, timefmt
from daemon.cleanup.blobs import kept_blobs
from daemon.cleanup.filters import PruneFilter
from daemon.cleanup.sizes import dir_size
from daemon.containers.manager import ContainerManager
from daemon.containers.record import Container
from daemon.containers.state import Status
from daemon.images.store import ImageStore
from daemon.layers.overlay2 import LayerStore

log = logging.getLogger(__name__)
_PRUNABLE = (Status.CREATED, Status.EXITED, Status.DEAD)


@dataclass(frozen=True, slots=True)
class ImageUse:
    id: str
    repo_tags: list[str]
    created: float
    size: int
    shared_size: int
    containers: int


@dataclass(frozen=True, slots=True)
class ContainerUse:
    c: Container
    size_rw: int
    size_root_fs: int


@dataclass(frozen=True, slots=True)
class VolumeUse:
    name: str
    driver: str
    size: int  # bytes under its _data (each inode once)
    ref_count: int  # containers (any state) that refer to it


@dataclass(frozen=True, slots=True)
class Usage:
    layers_size: int
    images: list[ImageUse]
    containers: list[ContainerUse]
    volumes: list[VolumeUse]


def _created(text: str) -> float:
    try:
        return timefmt.parse_rfc3339(text)
    except ValueError:
        return 0.0


class Cleanup:
    def __init__(self, manager: ContainerManager, images: ImageStore, layers: LayerStore) -> None:
        self.m = manager
        self.images = images
        self.layers = layers

    def _rw_size(self, cid: str) -> int:
        return dir_size(str(self.layers.diff_dir(cid)))

    async def prune_containers(self, filters: Sequence[tuple[str, str]]) -> tuple[list[str], int]:
        f = PruneFilter(filters)
        deleted: list[str] = []
        reclaimed = 0
        for c in list(self.m.store):
            if c.status not in _PRUNABLE or not f.matches(c.created, dict(c.config.labels)):
                continue
            size = await asyncio.to_thread(self._rw_size, c.id)
            try:
                await self.m.remove(c.id)
            except errdefs.CtrdError as exc:  # started or removed meanwhile: not ours to prune
                log.info("container prune: %s: %s", c.id, exc)
                continue
            deleted.append(c.id)
            reclaimed += size
        return deleted, reclaimed

    def _in_use(self) -> Counter[str]:
        return Counter(c.image_id for c in self.m.store)

    async def prune_images(self, filters: Sequence[tuple[str, str]], all_: bool) -> tuple[list[tuple[str, str]], int]:
        """(untagged, deleted) pairs as docker lists them, and the bytes of the layers removed."""
        f = PruneFilter(filters)
        used = self._in_use()
        out: list[tuple[str, str]] = []
        reclaimed = 0
        for im in await asyncio.to_thread(self.images.list):
            if used.get(im.id) or (im.repo_tags and not all_):
                continue
            if not f.matches(_created(im.created), im.config.labels):
                continue
            sizes = {r.chain_id: r.size for r in list(self.images.layerdb.records.values())}
            try:
                untagged, removed = await asyncio.to_thread(
                    self.images.remove, im.id, True, lambda image_id: image_id in self._in_use())
            except errdefs.CtrdError as exc:
                log.info("image prune: %s: %s", im.id, exc)
                continue
            out += [(t, "") for t in untagged]
            if removed:
                out.append(("", removed[0]))
                out += [("", chain) for chain in removed[1:]]
                reclaimed += sum(sizes.get(chain, 0) for chain in removed[1:])
        return out, reclaimed

    async def usage(self) -> Usage:
        return await asyncio.to_thread(self._usage)

    def _usage(self) -> Usage:
        """Sizes on disk: an image layer counts its files and the blob kept for it (push/save);
        blobs no layer claims count in the total only."""
        images = self.images.list()
        records = dict(self.images.layerdb.records)
        kept, content_total = kept_blobs(self.images.root, self.images.meta)
        disk = {ch: r.size + kept.get(r.diff_id, 0) for ch, r in records.items()}
        chains: dict[str, list[str]] = {}
        refs: Counter[str] = Counter()
        for im in images:
            top = self.images.chain_of(im.id)
            chains[im.id] = top
            refs.update(top)
        used = self._in_use()
        out_images = []
        sizes: dict[str, int] = {}
        for im in images:
            size = sum(disk.get(ch, 0) for ch in chains[im.id])
            shared = sum(disk.get(ch, 0) for ch in chains[im.id] if refs[ch] > 1)
            sizes[im.id] = size
            out_images.append(ImageUse(im.id, im.repo_tags, _created(im.created), size, shared, used.get(im.id, 0)))
        conts = []
        for c in self.m.store:
            rw = self._rw_size(c.id)
            conts.append(ContainerUse(c, rw, rw + sizes.get(c.image_id, 0)))
        claimed = sum(kept.get(r.diff_id, 0) for r in records.values())
        return Usage(sum(disk.values()) + max(content_total - claimed, 0), out_images, conts, self._volumes())

    def _volumes(self) -> list[VolumeUse]:
        store = self.m.volumes.store
        return [VolumeUse(v.name, v.driver, dir_size(v.mountpoint), len(store.users(v.name)))
                for v in store.list_volumes()]
