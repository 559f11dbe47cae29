"""Classic BPF for seccomp: a tiny forward-only assembler with labels, and runc's ENOSYS stub.

The stub goes in front of libseccomp's program. For every architecture the profile lists it
answers syscalls whose number is above the largest one the profile names (for that arch) with
ENOSYS instead of the default action: a syscall newer than the profile is "not implemented",
so programs fall back (glibc's clone3 -> clone, statx -> fstatat, ...) instead of failing with
EPERM. Same semantics as runc's libcontainer/seccomp/patchbpf: x86_64 and x32 (bit 30 of the
number) are told apart, and on s390(x) the multiplexer syscall 0 is answered with ENOSYS.
"""

from __future__ import annotations

import struct

from runtime.value import Value

TYPE_CHECKING = False  # collections.abc only for annotations: `collections` is ~1.5 ms of a create (runtime.sigs)
if TYPE_CHECKING:
    from collections.abc import Mapping

LD_W_ABS = 0x20
JMP_JA = 0x05
JMP_JEQ_K = 0x15
JMP_JGT_K = 0x25
JMP_JSET_K = 0x45
RET_K = 0x06
OFF_NR = 0  # struct seccomp_data: int nr; __u32 arch; ...
OFF_ARCH = 4
SECCOMP_RET_ERRNO = 0x00050000
ENOSYS = 38
RET_ENOSYS = SECCOMP_RET_ERRNO | ENOSYS
X32_BIT = 1 << 30
INSN = struct.Struct("=HBBI")  # struct sock_filter, host byte order (as seccomp_export_bpf writes it)
MAX_INSNS = 4096  # BPF_MAXINSNS

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_S390 = 0x00000016
AUDIT_ARCH_S390X = 0x80000016


class Insn(Value):
    code: int
    k: int = 0
    jt: str | None = None  # label; None = the next instruction
    jf: str | None = None


class Label(Value):
    name: str


def assemble(items: list[Insn | Label], end_labels: Mapping[str, int] | None = None) -> bytes:
    """Encode; a label that is not defined in `items` may be given as an index in `end_labels`
    counted from the end of the program (0 = just past it)."""
    where: dict[str, int] = {}
    n = 0
    for it in items:
        if isinstance(it, Label):
            where[it.name] = n
        else:
            n += 1
    for name, past in (end_labels or {}).items():
        where[name] = n + past
    out = bytearray()
    pc = 0
    for it in items:
        if isinstance(it, Label):
            continue
        if it.code == JMP_JA:
            target = where[it.jt] if it.jt else pc + 1
            out += INSN.pack(it.code, 0, 0, target - pc - 1)
        else:
            jt = (where[it.jt] - pc - 1) if it.jt else 0
            jf = (where[it.jf] - pc - 1) if it.jf else 0
            if not (0 <= jt <= 255 and 0 <= jf <= 255):
                raise ValueError(f"bpf jump out of range at {pc}")
            out += INSN.pack(it.code, jt, jf, it.k)
        pc += 1
    return bytes(out)


def enosys_stub(last: Mapping[int, Mapping[str, int]]) -> bytes:
    """The stub for {AUDIT_ARCH: {"x86_64"|"x32"|"other": largest syscall number}}; it falls
    through (jumps past its own end) into the filter that follows it."""
    items: list[Insn | Label] = [Insn(LD_W_ABS, OFF_ARCH)]
    arches = sorted(a for a, m in last.items() if m)
    for a in arches:
        items.append(Insn(JMP_JEQ_K, a, jt=f"arch{a}"))
    items.append(Insn(JMP_JA, jt="filter"))
    for a in arches:
        m = last[a]
        items += [Label(f"arch{a}"), Insn(LD_W_ABS, OFF_NR)]
        if a in (AUDIT_ARCH_S390, AUDIT_ARCH_S390X):
            items.append(Insn(JMP_JEQ_K, 0, jt="enosys"))
        if a == AUDIT_ARCH_X86_64 and "x86_64" in m and "x32" in m:
            items += [
                Insn(JMP_JSET_K, X32_BIT, jt=f"x32_{a}"),
                Insn(JMP_JGT_K, m["x86_64"], jt="enosys", jf="filter"),
                Label(f"x32_{a}"),
                Insn(JMP_JGT_K, m["x32"], jt="enosys", jf="filter"),
            ]
        elif a == AUDIT_ARCH_X86_64 and "x86_64" in m:
            items += [Insn(JMP_JSET_K, X32_BIT, jt="filter"), Insn(JMP_JGT_K, m["x86_64"], jt="enosys", jf="filter")]
        elif a == AUDIT_ARCH_X86_64:
            items += [Insn(JMP_JSET_K, X32_BIT, jf="filter"), Insn(JMP_JGT_K, m["x32"], jt="enosys", jf="filter")]
        else:
            items.append(Insn(JMP_JGT_K, m["other"], jt="enosys", jf="filter"))
    items += [Label("enosys"), Insn(RET_K, RET_ENOSYS), Label("filter")]
    return assemble(items)


def count(program: bytes) -> int:
    return len(program) // INSN.size


def check(program: bytes) -> None:
    if not program or len(program) % INSN.size or count(program) > MAX_INSNS:
        raise ValueError(f"not a seccomp program ({len(program)} bytes)")
