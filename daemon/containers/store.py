"""The container "database": `<root>/containers/<id>/`, decoupled from the layers.

Create writes hostconfig.json first and config.v2.json last, so config.v2.json is the commit
point: a directory without it was left by a crash inside create and is garbage. Removal unlinks
config.v2.json first (the record vanishes atomically; the rest is garbage recovery removes).
Every write is atomic (temp file, fsync, rename; the directory fsync only for a new name, see
daemon/atomic.py), so a kill -9 at any instant leaves parseable files.
The in-memory index (ids and names) is only touched from the event loop thread, without awaits in
between, so it needs no lock.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ctrd import ids
from ctrd.errdefs import AlreadyExists, InvalidArgument, NotFound
from daemon.atomic import fsync_dir, write_json_atomic
from daemon.containers import record
from daemon.containers.record import Container
from daemon.paths import under

log = logging.getLogger(__name__)

CONFIG = "config.v2.json"
HOSTCONFIG = "hostconfig.json"
# A removed container's directory, renamed out of the store for the daemon to delete after
# answering; a start-up deletes any left by a crash.
REMOVED_PREFIX = ".rm-"
# The records hold the containers' environment (secrets): docker's modes, owner-only.
DIR_MODE = 0o710
FILE_MODE = 0o600


class ContainerStore:
    def __init__(self, root: Path) -> None:
        self.dir = Path(root) / "containers"
        self._by_id: dict[str, Container] = {}
        self._names: dict[str, str] = {}  # name -> id (reserved names map to "")

    # ------------------------------------------------------------------ index

    def reserve_name(self, name: str) -> None:
        """Claim `name` before the slow part of create (the name is unique from here on)."""
        if name in self._names:
            owner = self._names[name]
            raise AlreadyExists(
                f'the container name "/{name}" is already in use by container "{owner}"'
                if owner
                else f'the container name "/{name}" is already in use'
            )
        self._names[name] = ""

    def name_taken(self, name: str) -> bool:
        return name in self._names

    def release_name(self, name: str) -> None:
        if self._names.get(name) == "":
            del self._names[name]

    def add(self, c: Container) -> None:
        self._by_id[c.id] = c
        self._names[c.name] = c.id

    def rename(self, c: Container, old: str) -> None:
        """`c.name` (reserved) now maps to c; `old` is free."""
        if self._names.get(old) == c.id:
            del self._names[old]
        self._names[c.name] = c.id

    def discard(self, c: Container) -> None:
        self._by_id.pop(c.id, None)
        if self._names.get(c.name) == c.id:
            del self._names[c.name]

    def all(self) -> list[Container]:
        return sorted(self._by_id.values(), key=lambda c: c.created, reverse=True)

    def __iter__(self) -> Iterator[Container]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, ref: str) -> Container:
        """Resolve a full id, a name (with or without "/") or a unique id prefix."""
        if not ref:
            raise InvalidArgument("id: container id or name is required")
        c = self._by_id.get(ref)
        if c is not None:
            return c
        cid = self._names.get(ref.lstrip("/"))
        if cid:
            return self._by_id[cid]
        if re.fullmatch(r"[0-9a-f]{1,63}", ref):
            matches = [c for i, c in self._by_id.items() if i.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidArgument(f"id: multiple containers found with provided prefix: {ref}")
        raise NotFound(f"no such container: {ref}")

    def id_taken(self, cid: str) -> bool:
        return cid in self._by_id or self.container_dir(cid).exists()

    # ------------------------------------------------------------------ disk (sync: call in a thread)

    def container_dir(self, cid: str) -> Path:
        return under(self.dir, cid)  # not `self.dir / cid`: that interns the record's id (daemon/paths.py)

    def write_host_config(self, c: Container, durable: bool = True) -> Path:
        """hostconfig.json (durable=False: create's, fsynced by its caller with the layers)."""
        d = self.container_dir(c.id)
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_json_atomic(d / HOSTCONFIG, record.host_config_to_json(c.host_config), FILE_MODE, sync_dir=False,
                          durable=durable)
        return d / HOSTCONFIG

    def commit_new(self, c: Container, staged: Path | None = None) -> None:
        """config.v2.json, the commit point (after hostconfig.json and the layers exist); one
        directory fsync covers both names. `staged`: the record written by stage_new, renamed
        into place (its data made durable by the caller)."""
        if staged is None:
            write_json_atomic(self.container_dir(c.id) / CONFIG, record.to_json(c), FILE_MODE, sync_dir=True)
            return
        os.rename(staged, self.container_dir(c.id) / CONFIG)
        fsync_dir(self.container_dir(c.id))

    def stage_new(self, c: Container) -> tuple[Path, list[Path]]:
        """Create's writes that commit nothing: hostconfig.json, and the record under a temporary
        name for commit_new to rename. Returns that name and what to fsync before the rename
        (the caller makes them durable with the layers, in one round). A crash before the rename
        leaves a directory without config.v2.json, which recovery removes whole."""
        host_config = self.write_host_config(c, durable=False)
        staged = self.container_dir(c.id) / f".{CONFIG}.staged"
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            data = memoryview(json.dumps(record.to_json(c), separators=(",", ":")).encode())
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
        return staged, [host_config, staged]

    def save(self, c: Container, durable: bool = True) -> None:
        """The record, atomically; `durable=False`: without its fsync (the rename still makes it
        whole or absent for every process, see daemon.atomic)."""
        write_json_atomic(self.container_dir(c.id) / CONFIG, record.to_json(c), FILE_MODE, durable=durable)

    def unlink_record(self, cid: str) -> None:
        """The commit point of a removal: without config.v2.json the directory is garbage."""
        try:
            (self.container_dir(cid) / CONFIG).unlink()
        except FileNotFoundError:
            pass

    def delete(self, cid: str) -> None:
        """Remove config.v2.json first (the record disappears atomically), then the rest."""
        d = self.container_dir(cid)
        try:
            (d / CONFIG).unlink()
        except FileNotFoundError:
            pass
        shutil.rmtree(d, ignore_errors=True)

    def detach(self, cid: str) -> Path | None:
        """The record's directory out of the store: config.v2.json first (the record disappears
        atomically), then one rename to a hidden name. Returns where it went, for the caller to
        delete off the request path (a `rm` spent ~0.7 ms deleting it: the record, the log and
        the network files); None when there was nothing to move."""
        d = self.container_dir(cid)
        try:
            (d / CONFIG).unlink()
        except FileNotFoundError:
            pass
        doomed = self.dir / f"{REMOVED_PREFIX}{cid}"
        try:
            os.rename(d, doomed)
        except FileNotFoundError:
            return None
        except OSError:  # a leftover of that name (a crash mid-deletion): this one goes now
            shutil.rmtree(d, ignore_errors=True)
            return None
        return doomed

    def load_all(self) -> tuple[list[Container], list[str]]:
        """Read every record; returns (containers, garbage dirs removed)."""
        garbage: list[str] = []
        return list(self.iter_records(garbage)), garbage

    def iter_records(self, garbage: list[str]) -> Iterator[Container]:
        """Each record as it is read (sync: blocking reads of small local files); the names of
        the garbage dirs removed are appended to `garbage`. Two opens and reads per record and
        nothing else: at a thousand containers this is on the restart's path."""
        self.dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        # An older ctrd wrote the records 0644 in a 0755 folder. They are tightened once: the
        # folder last, so its mode says the records below it are done (a crash in between
        # tightens them again at the next start) and a restart does not chmod every record.
        tighten = stat.S_IMODE(os.stat(self.dir).st_mode) != DIR_MODE
        with os.scandir(self.dir) as it:
            names = [e.name for e in it if e.is_dir(follow_symlinks=False)]
        for name in names:
            if name.startswith(REMOVED_PREFIX):  # a removal whose deletion a crash interrupted
                shutil.rmtree(self.dir / name, ignore_errors=True)
                garbage.append(name)
        dirs = sorted(n for n in names if ids.is_full_id(n))
        for name in dirs:
            d = self.dir / name
            if tighten:
                _tighten(d)
            try:
                data = _read_json(d / CONFIG)
            except FileNotFoundError:
                # create crashed before its commit point
                shutil.rmtree(d, ignore_errors=True)
                garbage.append(name)
                continue
            except (OSError, ValueError) as exc:
                log.error("container %s: unreadable record, skipped: %s", name, exc)
                continue
            try:
                try:
                    host = _read_json(d / HOSTCONFIG)
                except FileNotFoundError:
                    host = {}
                c = record.from_json(data, host)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("container %s: unreadable record, skipped: %s", name, exc)
                continue
            yield c
        if tighten:
            os.chmod(self.dir, DIR_MODE)


def _read_json(path: Path) -> Any:
    with open(path, "rb") as f:
        return json.loads(f.read())


def _tighten(d: Path) -> None:
    """An older ctrd wrote the records 0644 in a 0755 directory: owner-only now (JSON metadata
    only; symlinks are left alone, chmod would follow them)."""
    try:
        os.chmod(d, 0o700)
        for f in d.iterdir():
            if f.suffix == ".json" and f.is_file() and not f.is_symlink():
                os.chmod(f, FILE_MODE)
    except OSError as exc:
        log.warning("container %s: could not tighten modes: %s", d.name, exc)
