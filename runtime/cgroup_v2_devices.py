"""cgroup v2 device rules: cgroup v2 has no devices.allow/deny files; the rules become a small
BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's cgroup, as runc does
(libcontainer/cgroups/devices/devicefilter.go). Written by hand: the program is a handful of
compares per rule, far less than a BPF toolchain or binding would cost to import; the same
instructions for every engine's spec.

The program sees struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; } with
access_type = access << 16 | type (type 1 block, 2 char; access 1 mknod, 2 read, 4 write). The
rules are checked from the last to the first, so a later rule overrides an earlier one (the OCI
order: "deny all" first, then the allowed devices); no match denies.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from ctrd import libc
from runtime.errors import CgroupError
from runtime.spec_resources import DeviceRule

TYPE_CHECKING = False  # collections.abc only for annotations: `collections` is ~1.5 ms of a create (runtime.sigs)
if TYPE_CHECKING:
    from collections.abc import Sequence

_SYS_BPF = 321  # x86_64
_BPF_PROG_LOAD, _BPF_PROG_ATTACH, _BPF_PROG_DETACH, _BPF_PROG_QUERY = 5, 8, 9, 16
_BPF_OBJ_GET_INFO_BY_FD, _BPF_PROG_GET_FD_BY_ID = 15, 13
_PROG_TYPE_CGROUP_DEVICE = 15
_ATTACH_CGROUP_DEVICE = 6
_F_ALLOW_MULTI = 2

_TYPES = {"b": 1, "c": 2}
_ACCESS = {"m": 1, "r": 2, "w": 4}

# Opcodes (linux/bpf.h): class | op | source.
_LDX_W = 0x61  # r_dst = *(u32 *)(r_src + off)
_AND32_K, _RSH32_K, _MOV32_X, _MOV64_K = 0x54, 0x74, 0xBC, 0xB7
_JNE_K, _JNE_X, _EXIT = 0x55, 0x5D, 0x95


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def program(rules: Sequence[DeviceRule]) -> bytes:
    """The instructions for `rules` (in OCI order)."""
    prelude = [
        _insn(_LDX_W, 2, 1, 0), _insn(_AND32_K, 2, imm=0xFFFF),  # r2 = type
        _insn(_LDX_W, 3, 1, 0), _insn(_RSH32_K, 3, imm=16),  # r3 = access
        _insn(_LDX_W, 4, 1, 4),  # r4 = major
        _insn(_LDX_W, 5, 1, 8),  # r5 = minor
    ]
    blocks: list[list[tuple[int, int, int, int, int]]] = []
    for rule in reversed(rules):
        checks: list[tuple[int, int, int, int, int]] = []  # (code, dst, src, off, imm); off -1: to the next block
        if rule.type in _TYPES:
            checks.append((_JNE_K, 2, 0, -1, _TYPES[rule.type]))
        mask = 0
        for ch in rule.access:
            mask |= _ACCESS[ch]
        if mask != 7:
            # The requested access must be within the rule's: (access & mask) == access.
            checks.append((_MOV32_X, 1, 3, 0, 0))
            checks.append((_AND32_K, 1, 0, 0, mask))
            checks.append((_JNE_X, 1, 3, -1, 0))
        if rule.major >= 0:
            checks.append((_JNE_K, 4, 0, -1, rule.major))
        if rule.minor >= 0:
            checks.append((_JNE_K, 5, 0, -1, rule.minor))
        unconditional = not checks
        checks.append((_MOV64_K, 0, 0, 0, 1 if rule.allow else 0))
        checks.append((_EXIT, 0, 0, 0, 0))
        blocks.append(checks)
        if unconditional:
            break  # it decides every access: what would follow is unreachable, which the verifier refuses
    else:
        blocks.append([(_MOV64_K, 0, 0, 0, 0), (_EXIT, 0, 0, 0, 0)])  # no rule matched: deny
    out = list(prelude)
    for checks in blocks:
        n = len(checks)
        for i, (code, dst, src, off, imm) in enumerate(checks):
            if off == -1:
                off = n - i - 1  # to the first instruction after this block
            out.append(_insn(code, dst, src, off, imm))
    return b"".join(out)


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    rc = int(libc.syscall(_SYS_BPF, ctypes.c_int(cmd), attr, ctypes.c_uint(len(attr))))
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return rc


def load(insns: bytes) -> int:
    """BPF_PROG_LOAD; returns the program's fd (close-on-exec)."""
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(65536)
    attr = ctypes.create_string_buffer(128)
    # union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level, log_size,
    # log_buf, kern_version, prog_flags, prog_name[16], prog_ifindex, expected_attach_type
    struct.pack_into("<IIQQIIQII16sII", attr, 0, _PROG_TYPE_CGROUP_DEVICE, len(insns) // 8,
                     ctypes.addressof(code), ctypes.addressof(lic), 1, len(log), ctypes.addressof(log), 0, 0,
                     b"ctrd_devices", 0, _ATTACH_CGROUP_DEVICE)
    try:
        return _bpf(_BPF_PROG_LOAD, attr)
    except OSError as exc:
        detail = log.value.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise CgroupError(f"cgroup: linux.resources.devices: loading the cgroup v2 device program: "
                          f"{exc.strerror}{': ' + detail[0] if detail[0] else ''}") from None


def attach(cgroup_dir: str, rules: Sequence[DeviceRule]) -> None:
    """Load the program for `rules` and attach it to `cgroup_dir`, replacing one attached
    before by ctrd (an update); the attachment keeps the program alive, the fds are closed."""
    prog = load(program(rules))
    try:
        cg = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        os.close(prog)
        raise CgroupError(f"cgroup: open {cgroup_dir}: {exc.strerror}") from None
    try:
        old = attached(cg)
        attr = ctypes.create_string_buffer(struct.pack("<IIII", cg, prog, _ATTACH_CGROUP_DEVICE, _F_ALLOW_MULTI), 20)
        try:
            _bpf(_BPF_PROG_ATTACH, attr)
        except OSError as exc:
            raise CgroupError(f"cgroup: linux.resources.devices: attaching the device program to {cgroup_dir}: "
                              f"{exc.strerror}") from None
        for fd in old:  # after the new one is in place: never a moment without rules
            try:
                _bpf(_BPF_PROG_DETACH, ctypes.create_string_buffer(
                    struct.pack("<IIII", cg, fd, _ATTACH_CGROUP_DEVICE, 0), 20))
            finally:
                os.close(fd)
    finally:
        os.close(cg)
        os.close(prog)


def attached(cg_fd: int) -> list[int]:
    """Fds of the device programs attached directly to the cgroup (BPF_PROG_QUERY)."""
    ids = (ctypes.c_uint32 * 64)()
    # query: target_fd, attach_type, query_flags, attach_flags, prog_ids (ptr), prog_cnt
    attr = ctypes.create_string_buffer(struct.pack("<IIIIQI", cg_fd, _ATTACH_CGROUP_DEVICE, 0, 0,
                                                   ctypes.addressof(ids), 64), 40)
    try:
        _bpf(_BPF_PROG_QUERY, attr)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOENT):
            return []
        raise CgroupError(f"cgroup: querying device programs: {exc.strerror}") from None
    (count,) = struct.unpack_from("<I", attr, 24)
    fds = []
    for prog_id in ids[:count]:
        a = ctypes.create_string_buffer(struct.pack("<I", prog_id), 16)
        fds.append(_bpf(_BPF_PROG_GET_FD_BY_ID, a))
    return fds
