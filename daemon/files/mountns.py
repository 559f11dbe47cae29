"""The helper that shows `cp` a stopped or created container as its process would see it:
`python -m daemon.files.mountns` (fork+exec from asyncio, never a fork of the grpc daemon).

It is single-threaded and enters a mount namespace of its own (DESIGN: namespace work in a
forked single-threaded process, never in a thread), where it binds the container's volumes,
bind mounts and its hostname/hosts/resolv.conf over the merged root, as docker mounts them for
the copy. Nothing of it reaches the host's namespace (`/` is made rprivate first). The daemon then
works on `/proc/<helper pid>/root/<merged>`, which resolves through this namespace's mounts.

Each mount point is resolved inside the root the way the container would resolve it (symlinks
taken against the root, never the host; `daemon.files.resolve`), made if missing (docker makes
mount points too), and mounted on through its O_PATH fd, so a symlink can never redirect a mount
outside the root.

Wire: one JSON line on stdin, {"root": merged dir, "mounts": [{"source", "target", "ro"}, ...]}
(in mount order); one line back, "ok" or "error <message>"; then the namespace is held until
stdin closes, and the helper exits (the namespace and its mounts go with it).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from ctrd import errdefs, libc
from daemon.files.resolve import canonical, fs_readlink, open_parts

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG = 1
_KEPT = MS_NOSUID | MS_NODEV | MS_NOEXEC  # statvfs's ST_NOSUID/ST_NODEV/ST_NOEXEC have these values
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _mount(source: str | None, target: str, flags: int) -> None:
    libc.check(libc.mount(os.fsencode(source) if source else None, os.fsencode(target), None, flags, None),
               "mount", target)


def mountpoint(root_fd: int, target: str, is_dir: bool) -> list[str]:
    """`target`'s canonical parts inside the root, made (directories, or an empty file last)
    where missing."""
    parts = canonical(target, fs_readlink(root_fd))
    if not parts:
        raise OSError(0, "cannot mount over the root", target)
    for i in range(len(parts)):
        try:
            os.close(open_parts(root_fd, parts[: i + 1], os.O_PATH))
            continue
        except FileNotFoundError:
            pass
        parent = open_parts(root_fd, parts[:i], _DIR | os.O_NOFOLLOW)
        try:
            if i == len(parts) - 1 and not is_dir:
                os.close(os.open(parts[i], os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o755, dir_fd=parent))
            else:
                os.mkdir(parts[i], 0o755, dir_fd=parent)
        finally:
            os.close(parent)
    return parts


def bind(root_fd: int, source: str, target: str, read_only: bool) -> None:
    parts = mountpoint(root_fd, target, os.path.isdir(source))
    fd = open_parts(root_fd, parts, os.O_PATH)
    try:
        _mount(source, f"/proc/self/fd/{fd}", MS_BIND | MS_REC)
    finally:
        os.close(fd)
    if read_only:
        fd = open_parts(root_fd, parts, os.O_PATH)  # now the new mount's root
        try:
            path = f"/proc/self/fd/{fd}"
            kept = os.statvfs(path).f_flag & _KEPT
            _mount(None, path, MS_BIND | MS_REMOUNT | MS_RDONLY | kept)
        finally:
            os.close(fd)


def setup(plan: dict[str, Any]) -> None:
    libc.check(libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl")
    libc.check(libc.unshare(CLONE_NEWNS), "unshare")
    _mount(None, "/", MS_REC | MS_PRIVATE)
    root_fd = os.open(plan["root"], _DIR)
    try:
        for m in plan["mounts"]:
            try:
                bind(root_fd, m["source"], m["target"], bool(m.get("ro")))
            except OSError as exc:
                raise OSError(exc.errno, f"mounting {m['source']} on {m['target']}: {exc.strerror}") from None
    finally:
        os.close(root_fd)


def main() -> int:
    line = sys.stdin.buffer.readline()
    try:
        setup(json.loads(line))
    except (OSError, ValueError, KeyError, TypeError, errdefs.CtrdError) as exc:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        sys.stdout.write("error " + " ".join(text.split()) + "\n")
        sys.stdout.flush()
        return 1
    sys.stdout.write("ok\n")
    sys.stdout.flush()
    while sys.stdin.buffer.read(4096):  # held until the daemon closes stdin (or dies)
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
