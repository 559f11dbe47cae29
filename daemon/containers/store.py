"""The container "database": `<root>/containers/<id>/`, decoupled from the layers.

Create writes hostconfig.json first and config.v2.json last, so config.v2.json is the commit
point: a directory without it was left by a crash inside create and is garbage. Removal renames
the directory to `.rm-<id>` (the record vanishes atomically; a start-up deletes such names).
Every write is atomic (temp file, fsync, rename; the directory fsync only for a new name, see
daemon/atomic.py; config.v2.json's rewrites exchange it with its spare, `.config.v2.json.spare`,
which then holds the old record), so a kill -9 at any instant leaves parseable files.
A removed container's directory is emptied (its kept files blanked) and reused by a next create,
up to SKELETONS of them, for the reason daemon/layers/overlay2.py gives for layers: on ext4
without a journal each new inode costs more the more were freed in the last minute.
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
from daemon.atomic import fsync_dir, json_bytes, replace_by_exchange, write_json_atomic, write_private
from daemon.containers import record
from daemon.containers.record import Container
from daemon.paths import under
from daemon.spares import Spares

log = logging.getLogger(__name__)

CONFIG = "config.v2.json"
HOSTCONFIG = "hostconfig.json"
SPARE = f".{CONFIG}.spare"  # create's record before its commit; then the file save() exchanges
# what an emptied directory keeps (blanked: zeros, see _blank) for the next create: the files written in place
# there (daemon/network/files.py writes the last three)
_KEPT = frozenset({HOSTCONFIG, SPARE, "hostname", "hosts", "resolv.conf"})
SKELETONS = 16
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
        self._skeletons = Spares(SKELETONS)  # emptied removed directories (`.rm-` names), for create

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

    def write_host_config(self, c: Container) -> Path:
        """hostconfig.json of an existing record (an update's)."""
        path = self.container_dir(c.id) / HOSTCONFIG
        write_json_atomic(path, record.host_config_to_json(c.host_config), FILE_MODE, sync_dir=False)
        return path

    def commit_new(self, c: Container, staged: Path) -> None:
        """config.v2.json, the commit point (after hostconfig.json and the layers exist): the
        record stage_new wrote (its data made durable by the caller), renamed into place; one
        directory fsync covers both names."""
        os.rename(staged, self.container_dir(c.id) / CONFIG)
        fsync_dir(self.container_dir(c.id))

    def stage_new(self, c: Container) -> tuple[Path, list[Path]]:
        """Create's writes that commit nothing: its directory (an emptied one when there is),
        hostconfig.json, and the record under its spare name for commit_new to rename. They are
        written in place: nothing reads a directory without config.v2.json, and a crash before
        the rename leaves one, which recovery removes whole. Returns that name and what to fsync
        before the rename (the caller makes them durable with the layers, in one round)."""
        d = self._new_dir(c.id)
        write_private(d / HOSTCONFIG, json_bytes(record.host_config_to_json(c.host_config)), FILE_MODE)
        write_private(d / SPARE, json_bytes(record.to_json(c)), FILE_MODE)
        # containers/ too: the directory's new name (a mkdir, or an emptied one renamed) must be
        # durable before its record is, or a machine crash could bring it back as `.rm-<id>`
        return d / SPARE, [d / HOSTCONFIG, d / SPARE, self.dir]

    def _new_dir(self, cid: str) -> Path:
        d = self.container_dir(cid)
        skeleton = self._skeletons.take()
        if skeleton is not None:
            try:
                os.rename(skeleton, d)
                return d
            except OSError:
                shutil.rmtree(skeleton, ignore_errors=True)
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        return d

    def save(self, c: Container, durable: bool = True) -> None:
        """The record, atomically; `durable=False`: without its fsync (the exchange still makes it
        whole for every process, see daemon.atomic)."""
        d = self.container_dir(c.id)
        replace_by_exchange(d / CONFIG, d / SPARE, json_bytes(record.to_json(c)), FILE_MODE, durable=durable)

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
        """The record's directory out of the store in one rename to a hidden name (the record
        disappears atomically: a start-up deletes every `.rm-` directory). Returns where it went,
        for the caller to delete off the request path (a `rm` spent ~0.7 ms deleting it: the
        record, the log and the network files); None when there was nothing to move. Not an
        unlink of config.v2.json first: that frees its block, which this machine kind's root
        file system discards inside the unlink (~0.3 ms, daemon/atomic.py)."""
        d = self.container_dir(cid)
        doomed = self.dir / f"{REMOVED_PREFIX}{cid}"
        try:
            os.rename(d, doomed)
        except FileNotFoundError:
            return None
        except OSError:  # a leftover of that name (a crash mid-deletion): this one goes now
            self.delete(cid)
            return None
        return doomed

    def dispose(self, d: Path) -> None:
        """Delete a directory detach() moved out, or keep it, emptied, for a next create (up to
        SKELETONS): its files but the kept ones go (the log, whose readers may still follow it,
        among them) and the kept ones are overwritten with zeros (the record holds the
        environment)."""
        if not (self._skeletons.room() and _scrub(d) and self._skeletons.keep(0, d)):
            shutil.rmtree(d, ignore_errors=True)

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


def _scrub(d: Path) -> bool:
    try:
        with os.scandir(d) as it:
            for entry in it:
                if entry.name in _KEPT and entry.is_file(follow_symlinks=False):
                    _blank(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
        return True
    except OSError:
        return False


def _blank(path: str) -> None:
    """A kept file's content overwritten with zeros, its blocks kept for the next create's write
    in place (a truncation would free them, and a freed block costs a synchronous discard on
    this machine kind's root file system: daemon/atomic.py); a larger file is truncated."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size > _BLANK_MAX:
            os.ftruncate(fd, 0)
        elif size:
            os.pwrite(fd, bytes(size), 0)
    finally:
        os.close(fd)


_BLANK_MAX = 1 << 16


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
