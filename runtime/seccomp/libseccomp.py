"""A small typed ctypes binding of libseccomp's documented C API (seccomp_init(3),
seccomp_rule_add(3), seccomp_arch_add(3), seccomp_syscall_resolve_name(3), seccomp_export_bpf(3)).

Only the compiler uses it, in the parent, and only when a profile is not in the cache yet. The
library is Debian's libseccomp2 (scripts/install-deps.sh); it resolves syscall names per
architecture and emits the BPF program; loading is done by `runtime.seccomp.load`, not here.
"""

from __future__ import annotations

import ctypes
import os

from runtime.record import Record

TYPE_CHECKING = False  # collections.abc only for annotations: `collections` is ~1.5 ms of a create (runtime.sigs)
if TYPE_CHECKING:
    from collections.abc import Sequence

NR_SCMP_ERROR = -1  # __NR_SCMP_ERROR: the name is unknown to this libseccomp

ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_NOTIFY = 0x7FC00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000
ATTR_CTL_OPTIMIZE = 8  # SCMP_FLTATR_CTL_OPTIMIZE: 1 = priority order (default), 2 = binary tree


def act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def act_trace(code: int) -> int:
    return 0x7FF00000 | (code & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


class Cond(Record):
    """(a Record, not a NamedTuple: a field named `index` would shadow tuple.index)"""

    __slots__ = ("index", "op", "a", "b")  # noqa: RUF023 - the repr's order
    index: int
    op: int  # enum scmp_compare: NE=1 LT=2 LE=3 EQ=4 GE=5 GT=6 MASKED_EQ=7
    a: int
    b: int

    def __init__(self, index: int, op: int, a: int, b: int = 0) -> None:
        self._set(index=index, op=op, a=a, b=b)


class LibseccompError(OSError):
    pass


class Lib:
    """The loaded library with argument and result types declared once."""

    def __init__(self) -> None:
        # The soname, not ctypes.util.find_library (which runs `ldconfig -p`, ~10 ms).
        path = "libseccomp.so.2"
        try:
            lib = ctypes.CDLL(path, use_errno=True)
        except OSError as exc:
            raise LibseccompError(0, f"libseccomp is not installed ({path}): {exc}") from None
        self._lib = lib
        lib.seccomp_version.restype = ctypes.POINTER(_Version)
        lib.seccomp_version.argtypes = []
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.restype = None
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_arch_native.restype = ctypes.c_uint32
        lib.seccomp_arch_native.argtypes = []
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_add.restype = ctypes.c_int
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name_arch.restype = ctypes.c_int
        lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
        lib.seccomp_rule_add_array.restype = ctypes.c_int
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                               ctypes.POINTER(_ArgCmp)]
        lib.seccomp_attr_set.restype = ctypes.c_int
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_export_bpf.restype = ctypes.c_int
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        v = lib.seccomp_version().contents
        self.version = f"{v.major}.{v.minor}.{v.micro}"
        self.native_arch = int(lib.seccomp_arch_native())

    def arch_token(self, name: str) -> int:
        """The SCMP_ARCH_* token for a libseccomp arch name ("x86_64"), 0 if unknown."""
        return int(self._lib.seccomp_arch_resolve_name(name.encode()))

    def syscall_nr(self, name: str, arch: int = 0) -> int:
        """The number of a syscall for `arch` (0: native); NR_SCMP_ERROR if unknown, another
        negative (a pseudo number) if it does not exist on that arch."""
        if arch:
            return int(self._lib.seccomp_syscall_resolve_name_arch(arch, name.encode()))
        return int(self._lib.seccomp_syscall_resolve_name(name.encode()))

    def filter(self, default_action: int) -> Filter:
        ctx = self._lib.seccomp_init(default_action)
        if not ctx:
            raise LibseccompError(0, f"seccomp_init rejected default action {default_action:#x}")
        return Filter(self._lib, ctx)


class Filter:
    """One libseccomp filter context; `close` releases it."""

    def __init__(self, lib: ctypes.CDLL, ctx: int) -> None:
        self._lib = lib
        self._ctx = ctx

    def add_arch(self, token: int) -> None:
        rc = self._lib.seccomp_arch_add(self._ctx, token)
        if rc < 0 and rc != -17:  # -EEXIST: the native arch is always there
            raise LibseccompError(-rc, f"seccomp_arch_add {token:#x}: {os.strerror(-rc).lower()}")

    def set_attr(self, attr: int, value: int) -> bool:
        """seccomp_attr_set; False where this libseccomp does not know the attribute."""
        return int(self._lib.seccomp_attr_set(self._ctx, attr, value)) == 0

    def add_rule(self, action: int, nr: int, conds: Sequence[Cond]) -> None:
        arr = (_ArgCmp * max(1, len(conds)))()
        for i, c in enumerate(conds):
            arr[i] = _ArgCmp(c.index, c.op, c.a, c.b)
        rc = self._lib.seccomp_rule_add_array(self._ctx, action, nr, len(conds), arr)
        if rc < 0:
            raise LibseccompError(-rc, os.strerror(-rc).lower())

    def export_bpf(self) -> bytes:
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            rc = self._lib.seccomp_export_bpf(self._ctx, fd)
            if rc < 0:
                raise LibseccompError(-rc, f"seccomp_export_bpf: {os.strerror(-rc).lower()}")
            size = os.fstat(fd).st_size
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._ctx:
            self._lib.seccomp_release(self._ctx)
            self._ctx = 0


_LIB: Lib | None = None


def lib() -> Lib:
    """The process-wide binding, loaded on first use (a cache hit never loads libseccomp)."""
    global _LIB
    if _LIB is None:
        _LIB = Lib()
    return _LIB
