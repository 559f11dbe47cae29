"""The host side of `cp`: tar streams of host paths and their safe extraction on the host.

Extraction uses tarfile with a filter: tarfile's own `tar_filter` path checks (no absolute names,
nothing outside the destination, no writing through a symlink that leads out of it), then the
member's own mode bits back (tar_filter strips setuid and group/other write, `cp` keeps them), and
ownership from the archive only with -a (docker: otherwise the invoking user owns the copies).
"""

from __future__ import annotations

import os
import queue
import tarfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

if not hasattr(tarfile, "tar_filter"):
    # Extraction filters (PEP 706) came with CPython 3.11.4; Debian 12's python3, which ctrd is
    # installed on (scripts/install-deps.sh), is 3.11.2: the same module from a later CPython,
    # as the backports.tarfile package ships it.
    from backports import tarfile  # type: ignore[no-redef]

CHUNK = 1 << 20


class ChunkReader:
    """A file-like reader over an iterator of byte chunks (tarfile's stream mode reads it)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.cur = b""
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        parts = []
        while n != 0:
            if self.pos >= len(self.cur):
                nxt = next(self.chunks, None)
                if nxt is None:
                    break
                self.cur, self.pos = nxt, 0
                continue
            left = len(self.cur) - self.pos
            take = left if n < 0 else min(n, left)
            parts.append(self.cur[self.pos : self.pos + take])
            self.pos += take
            if n > 0:
                n -= take
        return b"".join(parts)


def rebase(name: str, old: str, new: str) -> str:
    """`old` (the archive's top name) replaced by `new` at the start of `name`."""
    if old == new:
        return name
    if name == old or name == old + "/":
        return new + name[len(old):]
    if name.startswith(old + "/"):
        return new + name[len(old):]
    return name


def extract(chunks: Iterator[bytes], dest: str, keep_owner: bool, rename: tuple[str, str] | None) -> None:
    uid, gid = os.getuid(), os.getgid()
    links: list[tuple[str, int]] = []  # tarfile leaves symlinks' own mtimes alone; docker sets them

    def keep(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        if rename is not None:
            member.name = rebase(member.name, *rename)
            if member.islnk():
                member.linkname = rebase(member.linkname, *rename)
        if member.name.strip("/") in (".", ""):
            return None  # the copied directory itself: the destination keeps its own mode and owner
        checked = tarfile.tar_filter(member, path)
        if checked is None:
            return None
        ids: dict[str, Any] = {} if keep_owner else {"uid": uid, "gid": gid, "uname": None, "gname": None}
        if checked.issym():
            links.append((os.path.join(path, checked.name), int(checked.mtime)))
        return checked.replace(mode=member.mode, deep=False, **ids)

    with tarfile.open(fileobj=ChunkReader(chunks), mode="r|") as tf:  # type: ignore[call-overload]
        # small reads from the stream re-copy its whole buffer each time: read a chunk at a time
        tf.copybufsize = CHUNK
        tf.extractall(dest, numeric_owner=True, filter=keep)
    for link, mtime in links:
        try:
            os.utime(link, (mtime, mtime), follow_symlinks=False)
        except OSError:
            pass


def tar_chunks(src: str, arcname: str, keep_owner: bool) -> Iterator[bytes]:
    """A tar of host path `src` named `arcname` (its content for arcname "."), in chunks."""
    q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)

    class Writer:
        buf = bytearray()
        pos = 0

        def write(self, data: bytes) -> int:
            self.pos += len(data)
            if not self.buf and len(data) >= CHUNK:
                q.put(bytes(data))
                return len(data)
            self.buf += data
            if len(self.buf) >= CHUNK:
                q.put(bytes(self.buf))
                self.buf.clear()
            return len(data)

        def tell(self) -> int:  # tarfile's plain "w" mode writes straight through (no stream buffer)
            return self.pos

    def owner(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        if not keep_owner:  # docker: files copied into a container belong to root
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
        return ti

    def run() -> None:
        w = Writer()
        try:
            with tarfile.open(fileobj=w, mode="w", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
                tf.copybufsize = CHUNK  # (tarfile's default copies 16 KiB at a time)
                if arcname == ".":
                    tf.add(src, arcname=".", recursive=False, filter=owner)
                    for child in sorted(os.listdir(src)):
                        tf.add(os.path.join(src, child), arcname=f"./{child}", filter=owner)
                else:
                    tf.add(src, arcname=arcname, filter=owner)
            if w.buf:
                q.put(bytes(w.buf))
            q.put(None)
        except BaseException as exc:  # handed to the reader
            q.put(exc)

    threading.Thread(target=run, daemon=True).start()
    while True:
        item = q.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def stdin_chunks(read: Callable[[int], bytes]) -> Iterator[bytes]:
    while chunk := read(CHUNK):
        yield chunk
