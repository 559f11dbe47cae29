"""The volume store: `<root>/volumes/<name>/{_data,volume.json}`, recovered at start.

volume.json is the record (name, driver, created, labels, options), written atomically after
`_data` exists: a directory without it is a create that a crash interrupted, removed at load.
Volumes with driver options are mounted on `_data` when the first container starts with them and
unmounted when the last one lets go (and at daemon shutdown when none holds them). Which
containers refer to a volume is the container store's knowledge: `users` is asked for it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ctrd.errdefs import AlreadyExists, CtrdError, FailedPrecondition, Internal, InvalidArgument, NotFound
from ctrd.timefmt import parse_rfc3339, rfc3339
from daemon.atomic import write_json_atomic
from daemon.volumes import local, names
from daemon.volumes.local import KernelMounter, Mounter

log = logging.getLogger(__name__)

DRIVER = "local"
RECORD = "volume.json"
LIST_FILTERS = ("name", "label", "dangling", "driver")


@dataclass(frozen=True, slots=True)
class Volume:
    name: str
    mountpoint: str
    created_at: float
    driver: str = DRIVER
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        return names.ANONYMOUS_LABEL in self.labels

    def to_json(self) -> dict[str, Any]:
        """docker's `volume inspect` object."""
        return {
            "CreatedAt": created_text(self.created_at),
            "Driver": self.driver,
            "Labels": dict(self.labels) or None,
            "Mountpoint": self.mountpoint,
            "Name": self.name,
            "Options": dict(self.options) or None,
            "Scope": "local",
        }


def _no_users(name: str) -> list[str]:
    return []


class VolumeStore:
    def __init__(self, root: Path, mounter: Mounter | None = None) -> None:
        self.dir = Path(root) / "volumes"
        self.mounter: Mounter = mounter or KernelMounter()
        self.users: Callable[[str], list[str]] = _no_users  # ids of the containers that refer to a volume
        self._vols: dict[str, Volume] = {}
        self._holders: dict[str, set[str]] = {}  # name -> containers holding its mount (mounted volumes only)
        self._found_mounted: set[str] = set()  # mounted at load, owner unknown until reconcile()
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ records

    def _data(self, name: str) -> Path:
        return self.dir / name / "_data"

    def load(self) -> None:
        """Read every volume record; drop creates a crash interrupted; note what is still mounted."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o701)
        for entry in sorted(self.dir.iterdir()):
            if not entry.is_dir():
                continue
            rec = entry / RECORD
            try:
                d = json.loads(rec.read_text())
                v = Volume(d["Name"], str(self._data(d["Name"])), parse_rfc3339(d["CreatedAt"]), d.get("Driver", DRIVER),
                           dict(d.get("Labels") or {}), dict(d.get("Options") or {}))
            except FileNotFoundError:
                log.warning("volume %s: no %s (an interrupted create or remove): removing it", entry.name, RECORD)
                try:
                    self._remove_dir(entry.name)
                except (CtrdError, OSError) as exc:  # still mounted: left for a person to look at
                    log.error("volume %s: %s", entry.name, exc)
                continue
            except (ValueError, KeyError, TypeError) as exc:
                log.error("volume %s: unreadable %s, left alone: %s", entry.name, RECORD, exc)
                continue
            self._vols[v.name] = v
            if v.options and self.mounter.is_mounted(Path(v.mountpoint)):
                self._found_mounted.add(v.name)  # reconcile() says who still holds it

    def reconcile(self, live: Mapping[str, Iterable[str]]) -> None:
        """After container recovery: `live` maps volume names to the running containers using
        them; a mounted volume that no running container holds is unmounted."""
        with self._lock:
            for name in sorted(self._found_mounted):
                self._found_mounted.discard(name)
                if name in self._holders:
                    continue  # adopted by a container started during recovery
                holders = set(live.get(name, ()))
                if holders:
                    self._holders[name] = holders
                else:
                    self.mounter.unmount(Path(self._vols[name].mountpoint))
            for name, ids in live.items():
                if name in self._holders:
                    self._holders[name].update(ids)

    def create(self, name: str = "", driver: str = "", labels: Mapping[str, str] | None = None,
               options: Mapping[str, str] | None = None, *, anonymous: bool = False) -> tuple[Volume, bool]:
        """The volume `name` (a random one if ""), made if it does not exist: (volume, made)."""
        driver = driver or DRIVER
        if driver != DRIVER:
            raise InvalidArgument(f"driver: volume driver {driver!r} is not supported (only local)")
        labels = dict(labels or {})
        if anonymous or not name:
            labels.setdefault(names.ANONYMOUS_LABEL, "")
        opts = local.check_options(options or {})
        with self._lock:
            if name:
                names.check_name(name)
                existing = self._vols.get(name)
                if existing is not None:
                    return existing, False
            else:
                name = names.random_name()
                while name in self._vols:
                    name = names.random_name()
            data = self._data(name)
            try:
                data.mkdir(parents=True, mode=0o755)
            except FileExistsError:
                raise AlreadyExists(f"volume {name}: its directory {data.parent} exists without a record") from None
            v = Volume(name, str(data), time.time(), driver, labels, opts)
            try:
                write_json_atomic(data.parent / RECORD, {
                    "Name": name, "Driver": driver, "CreatedAt": rfc3339(v.created_at), "Labels": labels, "Options": opts,
                }, 0o600, sync_dir=True)
            except OSError as exc:
                self._remove_dir(name)
                raise Internal(f"volume {name}: writing its record: {exc}") from exc
            self._vols[name] = v
            return v, True

    def get(self, name: str) -> Volume:
        v = self._vols.get(name)
        if v is None:
            raise NotFound(f"get {name}: no such volume")
        return v

    def list_volumes(self, filters: Sequence[tuple[str, str]] = ()) -> list[Volume]:
        for key, value in filters:
            if key not in LIST_FILTERS:
                raise InvalidArgument(f"filters: invalid filter {key!r} ({', '.join(LIST_FILTERS)})")
            if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"filters: invalid filter 'dangling={value}'")
        return [v for v in sorted(self._vols.values(), key=lambda v: v.name) if self._matches(v, filters)]

    def _matches(self, v: Volume, filters: Sequence[tuple[str, str]]) -> bool:
        by_key: dict[str, list[str]] = {}
        for key, value in filters:
            by_key.setdefault(key, []).append(value)
        for key, values in by_key.items():  # one key's values are alternatives; keys all apply
            if key == "label":
                if not all(_label_matches(v.labels, want) for want in values):
                    return False
            elif not any(self._matches_one(v, key, value) for value in values):
                return False
        return True

    def _matches_one(self, v: Volume, key: str, value: str) -> bool:
        if key == "name":
            return value in v.name
        if key == "driver":
            return v.driver == value
        dangling = not self.users(v.name)
        return dangling == (value.lower() in ("true", "1"))

    def remove(self, name: str, force: bool = False, ignore: Collection[str] = ()) -> None:
        """`ignore`: containers not to count as users (one being removed with its volumes)."""
        with self._lock:
            if name not in self._vols:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = [u for u in self.users(name) if u not in ignore]
            if users or self._holders.get(name):
                ids = users or sorted(self._holders.get(name, ()))
                raise FailedPrecondition(f"remove {name}: volume is in use - [{', '.join(ids)}]")
            self._unmount(name)
            if name in self._found_mounted:
                self.mounter.unmount(Path(self._vols[name].mountpoint))
                self._found_mounted.discard(name)
            del self._vols[name]
            # the record goes first: a crash after it leaves a directory load() removes
            (self.dir / name / RECORD).unlink(missing_ok=True)
            self._remove_dir(name)

    def prune(self, all_: bool = False, filters: Sequence[tuple[str, str]] = ()) -> tuple[list[str], int]:
        """Unused anonymous volumes (every unused one with all_), narrowed by label filters:
        (removed names, bytes reclaimed)."""
        labels: list[str] = []
        not_labels: list[str] = []
        for key, value in filters:
            if key not in ("label", "label!"):
                raise InvalidArgument(f"filters: invalid filter {key!r} (label, label!)")
            (labels if key == "label" else not_labels).append(value)
        removed: list[str] = []
        space = 0
        for v in list(self._vols.values()):
            if not all_ and not v.anonymous:
                continue
            if not all(_label_matches(v.labels, want) for want in labels):
                continue
            if any(_label_matches(v.labels, want) for want in not_labels):
                continue
            if self.users(v.name) or self._holders.get(v.name):
                continue
            size = 0 if v.options else _du(Path(v.mountpoint))
            try:
                self.remove(v.name)
            except FailedPrecondition:
                continue
            removed.append(v.name)
            space += size
        return removed, space

    def _remove_dir(self, name: str) -> None:
        path = self.dir / name
        data = path / "_data"
        if self.mounter.is_mounted(data):  # never delete through a mount (a bind volume's host dir)
            raise Internal(f"volume {name}: {data} is still mounted")
        shutil.rmtree(path, ignore_errors=True)
        if path.exists():
            raise Internal(f"volume {name}: cannot remove {path}")

    # ------------------------------------------------------------------ mounts

    def acquire(self, name: str, holder: str) -> str:
        """The volume's mount point for container `holder`, mounting it for its first holder."""
        with self._lock:
            v = self.get(name)
            if not v.options:
                return v.mountpoint
            holders = self._holders.get(name)
            if holders is None:
                if name in self._found_mounted:  # still mounted from before a restart: adopt it
                    self._found_mounted.discard(name)
                else:
                    self.mounter.mount(local.mount_options(v.options), Path(v.mountpoint))
                holders = self._holders[name] = set()
            holders.add(holder)
            return v.mountpoint

    def release(self, name: str, holder: str) -> None:
        with self._lock:
            holders = self._holders.get(name)
            if holders is None:
                return
            holders.discard(holder)
            if not holders:
                self._unmount(name)

    def _unmount(self, name: str) -> None:
        if name in self._holders:
            v = self._vols.get(name)
            if v is not None:
                self.mounter.unmount(Path(v.mountpoint))
            del self._holders[name]

    def close(self) -> None:
        """Daemon shutdown: unmount every volume no running container holds (live-restore keeps
        the others for their containers)."""
        with self._lock:
            for name in [n for n, h in self._holders.items() if not h] + sorted(self._found_mounted):
                try:
                    if name in self._holders:
                        self._unmount(name)
                    else:
                        self.mounter.unmount(Path(self._vols[name].mountpoint))
                        self._found_mounted.discard(name)
                except Exception as exc:  # shutting down: report and keep going
                    log.warning("volume %s: unmount: %s", name, exc)

    def mounted(self) -> list[str]:
        return sorted(self._holders.keys() | self._found_mounted)


def created_text(ts: float) -> str:
    """docker's volume CreatedAt: RFC 3339 in local time, whole seconds ("Z" at UTC)."""
    text = datetime.fromtimestamp(int(ts)).astimezone().isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _label_matches(labels: Mapping[str, str], want: str) -> bool:
    key, sep, value = want.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _du(path: Path) -> int:
    """Bytes of the regular files under `path` (each inode once), like docker's directory.Size."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total
