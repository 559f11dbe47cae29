"""`docker diff`: what the container's read-write layer changed, as docker prints it.

Docker 20.10 on a kernel with overlay's redirect_dir (this one) diffs naively: the layer's tree
against its parent's, entry by entry (pkg/archive ChangesDirs). The same answer comes from the
upper dir alone plus lookups in the lower layers: an entry not below is added (A, and everything
under it); a whiteout of something below is deleted (D); an entry below is modified (C) when its
mode, owner, device or (not for directories) size or mtime differ, and a directory is C too when
anything under it changed; an opaque directory hides what is below it, so the names below that it
no longer has are deleted. Parents come before their children, names in byte order.
`classify` works on plain records, so unit tests feed it fakes; `rw_changes` feeds it the layer.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from daemon.files.resolve import open_parts, split
from daemon.files.tarwrite import is_opaque, is_whiteout

MODIFY, ADD, DELETE = 0, 1, 2
LETTERS = {MODIFY: "C", ADD: "A", DELETE: "D"}
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Node:
    path: str  # "/etc/hosts"
    is_dir: bool = False
    whiteout: bool = False
    opaque: bool = False
    size: int = 0
    mode: int = 0
    mtime_ns: int = 0
    uid: int = 0
    gid: int = 0
    rdev: int = 0


class Lower(Protocol):
    def stat(self, path: str) -> Node | None: ...  # the path in the lower layers, None if absent
    def names(self, path: str) -> list[str]: ...  # a lower directory's entries


def differs(old: Node, new: Node) -> bool:
    """docker's statDifferent: size and mtime count only for non-directories."""
    if (old.mode, old.uid, old.gid, old.rdev) != (new.mode, new.uid, new.gid, new.rdev):
        return True
    return not new.is_dir and (old.mtime_ns != new.mtime_ns or old.size != new.size)


def classify(upper: Iterable[Node], lower: Lower) -> list[tuple[str, int]]:
    kids: dict[str, list[Node]] = {}
    for n in upper:
        kids.setdefault(n.path.rsplit("/", 1)[0] or "/", []).append(n)
    out: list[tuple[str, int]] = []

    def visit(parent: str, hidden: bool) -> None:
        for f in sorted(kids.get(parent, []), key=lambda n: os.fsencode(n.path)):
            below = None if hidden else lower.stat(f.path)
            if f.whiteout:
                if below is not None:
                    out.append((f.path, DELETE))
                continue
            if below is None:
                out.append((f.path, ADD))
                if f.is_dir:
                    visit(f.path, True)
                continue
            mark = len(out)
            changed = differs(below, f)
            if changed:
                out.append((f.path, MODIFY))
            if f.is_dir:
                visit(f.path, f.opaque or not below.is_dir)
                if f.opaque and below.is_dir:
                    have = {n.path.rsplit("/", 1)[1] for n in kids.get(f.path, []) if not n.whiteout}
                    out.extend((f"{f.path}/{name}", DELETE) for name in sorted(lower.names(f.path), key=os.fsencode)
                               if name not in have)
                if not changed and len(out) > mark:
                    out.insert(mark, (f.path, MODIFY))

    visit("/", False)
    return out


def _node(path: str, st: os.stat_result, opaque: bool = False) -> Node:
    return Node(path, stat.S_ISDIR(st.st_mode), is_whiteout(st), opaque, st.st_size, st.st_mode, st.st_mtime_ns,
                st.st_uid, st.st_gid, st.st_rdev)


def walk(upper_fd: int, prefix: str = "") -> Iterator[Node]:
    """Every entry under `upper_fd`, parents before children, names in byte order (no symlink followed)."""
    for name in sorted(os.listdir(upper_fd), key=os.fsencode):
        path = f"{prefix}/{name}"
        st = os.stat(name, dir_fd=upper_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(name, _DIR, dir_fd=upper_fd)
            try:
                yield _node(path, st, is_opaque(fd))
                yield from walk(fd, path)
            finally:
                os.close(fd)
        else:
            yield _node(path, st)


class LayerLower:
    """The lower layers' diff dirs (fds, topmost first), read without following any symlink;
    a whiteout hides what is below it, an opaque directory what is below it inside."""

    def __init__(self, fds: list[int]) -> None:
        self.fds = fds

    def _find(self, path: str) -> tuple[int, os.stat_result] | None:
        parts = split(path)
        for i, layer in enumerate(self.fds):
            try:
                parent = open_parts(layer, parts[:-1], _DIR)
            except OSError:
                continue  # missing, or a symlink on the way: not this path in this layer
            try:
                st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            except OSError:
                continue
            finally:
                os.close(parent)
            return None if is_whiteout(st) else (i, st)
        return None

    def stat(self, path: str) -> Node | None:
        found = self._find(path)
        return _node(path, found[1]) if found else None

    def names(self, path: str) -> list[str]:
        names: set[str] = set()
        gone: set[str] = set()
        for layer in self.fds:
            try:
                fd = open_parts(layer, split(path), _DIR)
            except OSError:
                continue
            try:
                for name in os.listdir(fd):
                    if name in names or name in gone:
                        continue  # a layer above decided
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    (gone if is_whiteout(st) else names).add(name)
                if is_opaque(fd):
                    break
            finally:
                os.close(fd)
        return sorted(names - gone)


def rw_changes(upper: str, lowers: list[str]) -> list[tuple[str, int]]:
    fds = [os.open(p, _DIR) for p in [upper, *lowers]]
    try:
        return classify(walk(fds[0]), LayerLower(fds[1:]))
    finally:
        for fd in fds:
            os.close(fd)
