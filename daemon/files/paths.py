"""Where a `cp` path lands inside the container, with docker's rules (container.ResolvePath).

The path is made absolute and cleaned lexically first (`/a/b/..` is `/a`). Without a trailing
`/` or `/.`, everything but the last component is resolved (symlinks followed, inside the root)
and the last one is taken as it is: copying a symlink copies the link. With one, the whole path
is resolved and must be a directory; `/.` means "the directory's content".
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from ctrd import errdefs, timefmt
from daemon.files.resolve import Readlink, canonical, open_parts, split

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# Go's os.FileMode type bits (docker's ContainerPathStat.Mode is one)
_GO_DIR, _GO_SYMLINK, _GO_DEVICE, _GO_PIPE, _GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
_GO_SETUID, _GO_SETGID, _GO_CHARDEV, _GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20


def go_file_mode(st_mode: int) -> int:
    mode = st_mode & 0o777
    fmt = stat.S_IFMT(st_mode)
    mode |= {stat.S_IFDIR: _GO_DIR, stat.S_IFLNK: _GO_SYMLINK, stat.S_IFIFO: _GO_PIPE, stat.S_IFSOCK: _GO_SOCKET,
             stat.S_IFBLK: _GO_DEVICE, stat.S_IFCHR: _GO_DEVICE | _GO_CHARDEV}.get(fmt, 0)
    if st_mode & stat.S_ISUID:
        mode |= _GO_SETUID
    if st_mode & stat.S_ISGID:
        mode |= _GO_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= _GO_STICKY
    return mode


@dataclass(frozen=True, slots=True)
class PathStat:
    name: str
    size: int
    mode: int  # st_mode
    mtime: str  # RFC 3339
    link_target: str = ""

    @property
    def go_mode(self) -> int:
        return go_file_mode(self.mode)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


@dataclass(frozen=True, slots=True)
class Located:
    parts: list[str]  # canonical, from the root; the last one may be a symlink
    name: str  # what the archive calls it ("." for a directory's content)
    stat: PathStat
    st: os.stat_result


def clean(path: str) -> list[str]:
    out: list[str] = []
    for comp in split(path):
        if comp == "..":
            if out:
                out.pop()
        else:
            out.append(comp)
    return out


def lstat_parts(root_fd: int, parts: list[str]) -> os.stat_result:
    if not parts:
        return os.fstat(root_fd)
    parent = open_parts(root_fd, parts[:-1], _DIR)
    try:
        return os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
    finally:
        os.close(parent)


def locate(root_fd: int, path: str, readlink: Readlink, container: str) -> Located:
    if not path:
        raise errdefs.InvalidArgument("path: must not be empty")
    parts_in = clean(path)
    content = path.endswith("/.") or path == "." or not parts_in
    trailing = content or path.endswith("/")
    if trailing:
        parts = canonical("/".join(parts_in), readlink)
        name = "." if content else parts_in[-1]
    else:
        parts = [*canonical("/".join(parts_in[:-1]), readlink), parts_in[-1]]
        name = parts_in[-1]
    try:
        st = lstat_parts(root_fd, parts)
    except (FileNotFoundError, NotADirectoryError):
        raise errdefs.NotFound(f"Could not find the file {path} in container {container}") from None
    except OSError as e:
        raise errdefs.InvalidArgument(f"{path}: {e.strerror}") from None
    if trailing and not stat.S_ISDIR(st.st_mode):
        raise errdefs.InvalidArgument(f"{path}: not a directory")
    target = ""
    if stat.S_ISLNK(st.st_mode):
        target = "/" + "/".join(canonical("/".join(parts_in), readlink))
    ps = PathStat(name if name != "." else (parts_in[-1] if parts_in else "/"), st.st_size, st.st_mode,
                  timefmt.rfc3339(st.st_mtime), target)
    return Located(parts, name, ps, st)
