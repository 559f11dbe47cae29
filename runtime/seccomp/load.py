"""Install a compiled program in the calling process: seccomp(SECCOMP_SET_MODE_FILTER, flags, prog).

`Loader` is built in the parent (ctypes buffers, the libc function, the syscall number) so that
the child, which may not import anything any more (runtime.init step 1), only makes one call.
"""

from __future__ import annotations

import ctypes
import os

from runtime.errors import SetupError
from runtime.seccomp import bpf

SECCOMP_SET_MODE_FILTER = 1
SYS_SECCOMP: dict[str, int] = {
    "x86_64": 317, "aarch64": 277, "riscv64": 277, "loongarch64": 277, "s390x": 348, "ppc64le": 358,
    "ppc64": 358, "i686": 354, "i386": 354, "armv7l": 383, "armv8l": 383,
}


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Loader:
    def __init__(self, program: bytes, flags: int, digest: str = "") -> None:
        bpf.check(program)
        machine = os.uname().machine
        if machine not in SYS_SECCOMP:
            raise SetupError(f"seccomp: no seccomp(2) syscall number known for {machine}")
        self.program = program
        self.flags = flags
        self.digest = digest
        self._nr = SYS_SECCOMP[machine]
        self._buf = ctypes.create_string_buffer(program, len(program))
        self._prog = _SockFprog(bpf.count(program), ctypes.cast(self._buf, ctypes.c_void_p))
        self._ptr = ctypes.pointer(self._prog)
        libc = ctypes.CDLL(None, use_errno=True)
        self._syscall = libc.syscall
        self._syscall.restype = ctypes.c_long
        self._syscall.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_ulong, ctypes.POINTER(_SockFprog)]

    def load(self) -> None:
        """Called in the child: no import, no allocation beyond an exception on failure."""
        if self._syscall(self._nr, SECCOMP_SET_MODE_FILTER, self.flags, self._ptr) != 0:
            err = ctypes.get_errno()
            raise SetupError(f"loading the seccomp filter: {os.strerror(err).lower()}")
