"""`docker diff`: what the container's read-write layer changed, as docker's overlay driver says it.

Walk the upper dir in lexical order (Go's filepath.Walk). An overlay whiteout (char 0/0) is a
deletion (D); an opaque directory that exists in a lower layer is a deletion too (it was removed
and made again: its content follows as additions). Anything else is an addition (A) unless a lower
layer has the path (C); a directory found below with the same size, mode and mtime is left out
(it was only copied up on the way to something under it). The parent of an A or D is reported as
C once, before it, unless it was seen already. The classification (`classify`) works on plain
records, so unit tests feed it fakes; `rw_changes` feeds it the real layer.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

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


Lookup = Callable[[str], "Node | None"]  # a path in the lower layers (topmost first) or None


def classify(upper: Iterable[Node], lower: Lookup) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    changed_dirs: set[str] = set()
    for f in upper:
        if f.path == "/":
            continue
        below = lower(f.path)
        if f.whiteout or (f.opaque and f.is_dir and below is not None):
            kind = DELETE
        else:
            kind = ADD
            if below is not None:
                if below.is_dir and f.is_dir and (below.size, below.mode, below.mtime_ns) == (f.size, f.mode, f.mtime_ns):
                    continue
                kind = MODIFY
        if f.is_dir:
            changed_dirs.add(f.path)
        if kind in (ADD, DELETE):
            parent = f.path.rsplit("/", 1)[0] or "/"
            if parent != "/" and parent not in changed_dirs:
                out.append((parent, MODIFY))
                changed_dirs.add(parent)
        out.append((f.path, kind))
    return out


def _node(path: str, st: os.stat_result, opaque: bool = False) -> Node:
    return Node(path, stat.S_ISDIR(st.st_mode), is_whiteout(st), opaque, st.st_size, st.st_mode, st.st_mtime_ns)


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


def lower_lookup(lower_fds: list[int]) -> Lookup:
    """Lookup in the lower layers' diff dirs (fds, topmost first), following no symlink on the way;
    a whiteout above hides what is below."""

    def lookup(path: str) -> Node | None:
        parts = split(path)
        for layer in lower_fds:
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
            if is_whiteout(st):
                return None
            return _node(path, st)
        return None

    return lookup


def rw_changes(upper: str, lowers: list[str]) -> list[tuple[str, int]]:
    fds = [os.open(p, _DIR) for p in [upper, *lowers]]
    try:
        return classify(walk(fds[0]), lower_lookup(fds[1:]))
    finally:
        for fd in fds:
            os.close(fd)
