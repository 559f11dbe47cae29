"""The libc functions Python's os module lacks, declared once with their C signatures.

ctypes keeps one function object per name and library handle, so two modules that set different
`argtypes` on the same libc function would silently change each other's calls; declaring them here,
once, rules that out. Leaf module: standard library only, so that `runtime/` may import it.
"""

from __future__ import annotations

import ctypes
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_c_char_p, _c_int, _c_ulong = ctypes.c_char_p, ctypes.c_int, ctypes.c_ulong

LIBC = ctypes.CDLL(None, use_errno=True)


def _declare(name: str, restype: Any, *argtypes: Any) -> Any:
    fn = getattr(LIBC, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


# mount(source, target, fstype, flags, data): each char* may be None (NULL).
mount = _declare("mount", _c_int, _c_char_p, _c_char_p, _c_char_p, _c_ulong, _c_char_p)
umount2 = _declare("umount2", _c_int, _c_char_p, _c_int)
unshare = _declare("unshare", _c_int, _c_int)
setns = _declare("setns", _c_int, _c_int, _c_int)
sethostname = _declare("sethostname", _c_int, _c_char_p, ctypes.c_size_t)
prctl = _declare("prctl", _c_int, _c_int, _c_ulong, _c_ulong, _c_ulong, _c_ulong)
madvise = _declare("madvise", _c_int, ctypes.c_void_p, ctypes.c_size_t, _c_int)
syscall = LIBC.syscall  # variadic: arguments are converted per call
syscall.restype = ctypes.c_long
capset = LIBC.capset  # (cap_user_header_t, cap_user_data_t): callers pass ctypes arrays
capset.restype = _c_int

PR_SET_NAME = 15


def set_process_name(name: bytes) -> None:
    """prctl(PR_SET_NAME): the name ps, top and pgrep show (the kernel keeps 15 bytes)."""
    buf = ctypes.create_string_buffer(name[:15])
    if prctl(PR_SET_NAME, ctypes.addressof(buf), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


# libc's fork called with the GIL held (PyDLL) and without CPython's after-fork work in the
# child: for the shim launcher, which forks shims from a single thread and copy-on-write heap.
_PY = ctypes.PyDLL(None, use_errno=True)
pyfork = _PY.fork
pyfork.restype = _c_int
pyfork.argtypes = []


def single_threaded() -> bool:
    """Whether this process has one thread (False when /proc cannot tell)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def fork_lean() -> int:
    """fork(2) without CPython's before- and after-fork work when this process has one thread,
    os.fork() otherwise (another thread could hold a lock the child would then wait for forever).

    os.fork() also runs, in the child, the interpreter's re-initialisation (thread states, locks,
    the registered at-fork hooks: logging, threading, random) before the child's first line.
    Measured 2026-12-07 (2-core machine, a process with the shim's and the runtime's modules
    imported, 50 forks each): from the fork call to the child's first line 1.33-1.51 ms with
    os.fork(), 0.63-0.67 ms with this; the parent's return the same (0.5-0.6 ms). The runtime's
    init is on a container start's path, and the child only sets itself up and execs."""
    if not single_threaded():
        return os.fork()
    pid = int(pyfork())
    if pid < 0:
        raise OSError(ctypes.get_errno(), "fork")
    return pid


# The raw syscall with the GIL held: for clone(2) with flags fork() cannot pass (runtime.userns).
pysyscall = _PY.syscall
pysyscall.restype = ctypes.c_long

_SYS_CLONE3 = {"x86_64": 435, "aarch64": 435}.get(os.uname().machine, -1)
_CLONE_INTO_CGROUP = 0x200000000
_SIGCHLD = 17


def fork_into_cgroup(cgroup_fd: int) -> int:
    """fork(2) whose child is born in the cgroup v2 directory `cgroup_fd` (clone3 with
    CLONE_INTO_CGROUP, Linux 5.7+): no migration, so none of the global lock a write to
    cgroup.procs takes (runtime.create says what that costs). A raw syscall, like fork_lean's
    one-thread case it is used in place of: no atfork handlers; the child only sets itself up
    and execs. OSError (ENOSYS, EINVAL, E2BIG on an older kernel) when the kernel refuses."""
    if _SYS_CLONE3 < 0:
        raise OSError(38, "clone3: not known on this machine")
    args = (ctypes.c_uint64 * 11)()  # struct clone_args (CLONE_ARGS_SIZE_VER2)
    args[0] = _CLONE_INTO_CGROUP
    args[4] = _SIGCHLD  # exit_signal
    args[10] = cgroup_fd
    pid = int(pysyscall(ctypes.c_long(_SYS_CLONE3), ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args))))
    return check(pid, "clone3")


def check(rc: int, what: str, path: str | None = None) -> int:
    """`rc` when the call succeeded; OSError("<what>: <strerror>", errno, path) when it returned < 0."""
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return rc

# fstatfs(fd, struct statfs *): callers pass a buffer; f_type is its first field (a long).
fstatfs = _declare("fstatfs", _c_int, _c_int, ctypes.c_void_p)


def fs_type(fd: int) -> int:
    """The filesystem magic of `fd` (statfs.f_type), or 0 when fstatfs fails."""
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux
    if fstatfs(fd, buf) != 0:
        return 0
    return int.from_bytes(buf.raw[: ctypes.sizeof(ctypes.c_long)], "little", signed=True) & 0xFFFFFFFF
