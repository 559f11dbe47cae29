"""A classic-BPF interpreter for seccomp programs (test helper): what would the kernel answer to
syscall `nr` of `arch` with `args`? Covers the instructions libseccomp and our stub emit."""

from __future__ import annotations

import struct

RET_ACTION = 0xFFFF0000
RET_DATA = 0x0000FFFF
ALLOW = 0x7FFF0000
ERRNO = 0x00050000
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
M32 = 0xFFFFFFFF


def run(program: bytes, nr: int, args: tuple[int, ...] = (), arch: int = AUDIT_ARCH_X86_64) -> int:
    data = struct.pack("<iIQ6Q", nr, arch, 0, *(list(args) + [0] * (6 - len(args))))
    insns = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    a = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        code, jt, jf, k = insns[pc]
        cls = code & 0x07
        pc += 1
        if cls == 0x00:  # LD
            mode = code & 0xE0
            if mode == 0x20:
                a = struct.unpack_from("=I", data, k)[0]
            elif mode == 0x00:
                a = k
            elif mode == 0x60:
                a = mem[k]
            else:
                raise ValueError(f"ld mode {code:#x}")
        elif cls == 0x01:  # LDX
            x = k if code & 0xE0 == 0x00 else mem[k]
        elif cls == 0x02:
            mem[k] = a
        elif cls == 0x03:
            mem[k] = x
        elif cls == 0x04:  # ALU
            src = x if code & 0x08 else k
            op = code & 0xF0
            ops = {0x00: a + src, 0x10: a - src, 0x20: a * src, 0x40: a | src, 0x50: a & src, 0x60: a << src,
                   0x70: a >> src, 0x80: -a, 0xA0: a ^ src}
            if op not in ops:
                raise ValueError(f"alu op {code:#x}")
            a = ops[op] & M32
        elif cls == 0x05:  # JMP
            op = code & 0xF0
            if op == 0x00:
                pc += k
                continue
            src = x if code & 0x08 else k
            cond = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
            pc += jt if cond else jf
        elif cls == 0x06:  # RET
            return a if code & 0x18 == 0x10 else k
        elif cls == 0x07:
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
        else:
            raise ValueError(f"opcode {code:#x}")


def verdict(ret: int) -> str:
    """"allow", "errno:N", "kill", ... for a SECCOMP_RET_* value."""
    action = ret & RET_ACTION
    if action == ALLOW:
        return "allow"
    if action == ERRNO:
        return f"errno:{ret & RET_DATA}"
    return {0x80000000: "kill_process", 0x00000000: "kill_thread", 0x00030000: "trap", 0x7FFC0000: "log",
            0x7FF00000: f"trace:{ret & RET_DATA}"}.get(action, hex(ret))
