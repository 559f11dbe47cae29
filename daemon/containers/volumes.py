"""A container's volumes: resolved at create (named ones made on demand, anonymous ones for `-v
/path` and the image's VOLUMEs, --volumes-from copied), held while it runs (mounted for the
first holder, copied up from the image at its first start), dropped with `rm -v` / `--rm`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ctrd.errdefs import CtrdError, InvalidArgument
from daemon.containers.record import Container, HostConfig, MountSpec
from daemon.volumes import copyup
from daemon.volumes.store import VolumeStore

log = logging.getLogger(__name__)

Lookup = Callable[[str], Container]


class ContainerVolumes:
    def __init__(self, store: VolumeStore, containers: Callable[[], Iterable[Container]]) -> None:
        self.store = store
        self._containers = containers
        self._creating: dict[str, set[str]] = {}  # container being created -> the volumes it will use
        store.users = self.users

    def users(self, name: str) -> list[str]:
        """Ids of the containers (any state, or being created) whose mounts name the volume."""
        ids = [c.id for c in self._containers() if any(m.type == "volume" and m.name == name
                                                       for m in c.host_config.mounts)]
        pending = list(self._creating.items())  # one C-level copy: creates run in worker threads
        return ids + [cid for cid, names in pending if name in names and cid not in ids]

    def created(self, cid: str) -> None:
        """The create of `cid` ended (its record is in the store, or it failed)."""
        self._creating.pop(cid, None)

    # ------------------------------------------------------------------ create

    def resolve(self, host: HostConfig, image_volumes: Sequence[str], lookup: Lookup,
                cid: str = "") -> tuple[HostConfig, list[str]]:
        """The mounts with every volume made and named; and the names of the volumes made here
        (for the caller to remove if the create fails). Precedence as docker's: the user's
        mounts, then --volumes-from, then the image's VOLUMEs. Until `created(cid)`, the volumes
        count as used by `cid` (a prune meanwhile leaves them)."""
        made: list[str] = []
        using = self._creating.setdefault(cid, set()) if cid else set()
        try:
            out = [self._volume(m, made, using) if m.type == "volume" else m for m in host.mounts]
            targets = {m.target for m in out}
            for ref in host.volumes_from:
                for m in _volumes_from(ref, lookup):
                    if m.target not in targets:
                        targets.add(m.target)
                        out.append(m)
                        if m.type == "volume":
                            using.add(m.name)
            for raw in image_volumes:
                path = os.path.normpath(raw).replace("//", "/")  # "/data/" and "/data" are one mount point
                if path == "/" or path in targets:
                    continue
                targets.add(path)
                out.append(self._volume(MountSpec("volume", path, origin="image"), made, using))
        except BaseException:
            self.created(cid)
            self.remove_quietly(made)
            raise
        return dataclasses.replace(host, mounts=tuple(out)), made

    def _volume(self, m: MountSpec, made: list[str], using: set[str]) -> MountSpec:
        v, new = self.store.create(m.name, m.driver, options=dict(m.volume_options), anonymous=not m.name)
        using.add(v.name)
        if new:
            made.append(v.name)
        return dataclasses.replace(m, name=v.name, source=v.mountpoint, driver=v.driver, anonymous=not m.name)

    def remove_quietly(self, names: Iterable[str], ignore: str = "") -> None:
        for name in names:
            try:
                self.store.remove(name, ignore=(ignore,) if ignore else ())
            except CtrdError as exc:
                log.warning("volume %s: %s", name, exc)

    # ------------------------------------------------------------------ start / exit / remove

    def prepare(self, c: Container, rootfs: Path) -> None:
        """Hold (mount) each volume for `c`; at its first start, copy the image's content into
        empty volumes (sync: runs in a thread)."""
        held: list[str] = []
        try:
            for m in c.host_config.mounts:
                if m.type != "volume":
                    continue
                self.store.acquire(m.name, c.id)
                held.append(m.name)
                if not c.has_been_started_before and not m.no_copy and m.origin != "volumes-from":
                    src = copyup.source_in_rootfs(rootfs, m.target)
                    if src is not None:
                        copyup.populate(src, Path(m.source))
        except BaseException:
            for name in held:
                self.store.release(name, c.id)
            raise

    def release(self, c: Container) -> None:
        for m in c.host_config.mounts:
            if m.type == "volume":
                try:
                    self.store.release(m.name, c.id)
                except CtrdError as exc:
                    log.warning("container %s: releasing volume %s: %s", c.id, m.name, exc)

    def remove_anonymous(self, c: Container) -> None:
        """`rm -v`: the container's anonymous volumes, unless another container uses them."""
        self.remove_quietly((m.name for m in c.host_config.mounts if m.type == "volume" and m.anonymous), ignore=c.id)

    def live_holders(self, running: Iterable[Container]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for c in running:
            for m in c.host_config.mounts:
                if m.type == "volume":
                    out.setdefault(m.name, []).append(c.id)
        return out


def _volumes_from(ref: str, lookup: Lookup) -> list[MountSpec]:
    name, _, mode = ref.partition(":")
    if mode not in ("", "ro", "rw"):
        raise InvalidArgument(f"volumes_from: invalid mode {mode!r} in {ref!r} (ro or rw)")
    try:
        other = lookup(name)
    except CtrdError:
        raise InvalidArgument(f"volumes_from: no such container: {name}") from None
    out = []
    for m in other.host_config.mounts:
        if m.type not in ("bind", "volume"):
            continue
        ro = m.read_only if not mode else mode == "ro"
        out.append(dataclasses.replace(m, read_only=ro, origin="volumes-from", anonymous=False))
    return out
