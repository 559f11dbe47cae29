"""The launcher's memory layout for the shims it forks: ballast and mergeable mappings.

A forked shim shares every page of the launcher until it writes one. When the shim allocates a
small object, pymalloc hands it a free block in some pool the launcher left half-used: a handful
of bytes costs the shim a whole copied 4 KiB page, and its first allocations after the fork land
on as many different pages (measured: 1000 small objects dirtied ~60 pages). Holding those free
blocks in the launcher (the "ballast", `fill`) makes the shim's allocations start fresh pools
instead, packed next to each other.

The ballast is built once: rebuilding it between forks would make the launcher write pages that
earlier shims still share, and each such page becomes that shim's private copy.

`mark_mergeable` lets a host that runs KSM merge the pages every shim copied the same way.
"""

from __future__ import annotations

import gc
import os
import sys

from ctrd import libc

POOL_SIZE = 16 * 1024  # CPython 3.10+ with the radix tree: 16 KiB pools in 1 MiB arenas
POOL_OVERHEAD = 48  # the pool header: the first block of a fresh pool sits right after it
SMALL_MAX = 512  # larger requests go to malloc, not to pymalloc pools
ALIGN = 16
MAX_PER_CLASS = 4096  # a safety bound: 16 KiB pools hold at most 1024 blocks
_BYTES_HEADER = sys.getsizeof(b"")  # bytes(n) takes _BYTES_HEADER + n bytes

_ballast: list[object] = []


def _make(size: int, i: int) -> object:
    """A new untracked object whose pymalloc block is `size` bytes and starts at id()."""
    if size == 16:
        return object()
    if size == 32:
        return float(i) + 0.5  # 24 bytes: the 32-byte class
    return bytes(size - _BYTES_HEADER)


def _fill_class(size: int, keep: list[object]) -> None:
    """Allocate blocks of one size class until pymalloc starts a fresh pool (two blocks bumped
    from the pool start): by then no half-used pool of this class is left."""
    prev = 0
    for i in range(MAX_PER_CLASS):
        obj = _make(size, i)
        keep.append(obj)
        addr = id(obj)
        if prev % POOL_SIZE == POOL_OVERHEAD and addr == prev + size:
            return
        prev = addr


def _plain_pymalloc() -> bool:
    """pymalloc without debug hooks: the only allocator whose pool layout `fill` relies on."""
    return os.environ.get("PYTHONMALLOC", "pymalloc") in ("", "pymalloc") and not sys.flags.dev_mode


def fill() -> int:
    """Empty the free lists, then hold every free small block; returns how many were taken."""
    gc.collect()  # also clears the tuple/list/dict/float free lists (a shim would reuse them)
    if not _plain_pymalloc():
        return 0
    keep: list[object] = []
    for size in range(ALIGN, SMALL_MAX + 1, ALIGN):
        if size in (16, 32) or size >= _BYTES_HEADER + 2:  # bytes of 0 or 1 byte are singletons
            _fill_class(size, keep)
    _ballast.extend(keep)
    return len(keep)


def trim() -> bool:
    """Give the free pages inside malloc's heap back to the kernel (glibc's malloc_trim: the warm-up's
    garbage), so that they are not part of what every shim maps and is charged its share of. A shim
    that allocates there later takes fresh zero pages instead of copies: no dearer."""
    malloc_trim = getattr(libc.LIBC, "malloc_trim", None)  # glibc only
    return bool(malloc_trim(0)) if malloc_trim is not None else False


MADV_MERGEABLE = 12


def mark_mergeable() -> int:
    """madvise(MADV_MERGEABLE) on the launcher's private writable mappings (its heap, pymalloc
    arenas, the data of libpython and extension modules); forked shims inherit the flag.

    Inert unless the host runs KSM (/sys/kernel/mm/ksm/run = 1): then the kernel merges the pages
    that every shim copied the same way (reference counts touched and restored, the same start-up
    writes) back into one shared copy. Per mapping, not prctl(PR_SET_MEMORY_MERGE): the flag must
    not reach the containers' processes, and mappings do not survive their execve. Returns the
    number of mappings marked."""
    madvise = libc.madvise
    marked = 0
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if fields[1] != "rw-p" or (len(fields) > 5 and fields[5].startswith("[") and fields[5] != "[heap]"):
                continue  # shared or read-only mappings, the stack, vdso/vvar
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if madvise(start, end - start, MADV_MERGEABLE) == 0:
                marked += 1
    return marked
