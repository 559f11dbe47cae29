"""Plain file operations on cgroup directories, shared by the v1 and v2 managers."""

from __future__ import annotations

import errno
import os
import time

from runtime.errors import CgroupError, ContainerExists
from runtime.record import Record

TYPE_CHECKING = False  # collections.abc (the `collections` package) only for the annotation
if TYPE_CHECKING:
    from collections.abc import Iterable


class Stats(Record):
    """(runtime.record says why this is not a dataclass)"""

    __slots__ = ("cpu_usage_ns", "memory_limit", "memory_usage", "oom_kills", "pids_current", "pids_limit")
    memory_usage: int
    memory_limit: int
    cpu_usage_ns: int
    pids_current: int
    pids_limit: int  # 0: no limit
    oom_kills: int

    def __init__(self, memory_usage: int = 0, memory_limit: int = 0, cpu_usage_ns: int = 0, pids_current: int = 0,
                 pids_limit: int = 0, oom_kills: int = 0) -> None:
        self._set(memory_usage=memory_usage, memory_limit=memory_limit, cpu_usage_ns=cpu_usage_ns,
                  pids_current=pids_current, pids_limit=pids_limit, oom_kills=oom_kills)


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def write(path: str, value: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise CgroupError(f"cgroup: write {value!r} to {path}: {exc.strerror}") from exc


def read_int(path: str, default: int = 0) -> int:
    try:
        text = read(path).strip()
    except OSError:
        return default
    if text == "max":
        return 0
    try:
        return int(text)
    except ValueError:
        return default


def procs(directory: str) -> list[int]:
    try:
        return [int(x) for x in read(os.path.join(directory, "cgroup.procs")).split()]
    except OSError:
        return []


def rmdir_wait(path: str, deadline: float) -> None:
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            # EBUSY: exiting tasks are still being torn down; they go within milliseconds.
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(f"cgroup: remove {path}: {exc.strerror}") from exc
            time.sleep(0.005)


def mkleaf(leaf: str) -> None:
    os.makedirs(os.path.dirname(leaf), exist_ok=True)
    try:
        os.mkdir(leaf)
    except FileExistsError:
        raise ContainerExists(f"cgroup {leaf} already exists")
    except OSError as exc:
        raise CgroupError(f"cgroup: create {leaf}: {exc.strerror}") from exc


def wait_empty(dirs: Iterable[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for d in dirs:
        while procs(d) and time.monotonic() < deadline:
            time.sleep(0.002)
