"""The vocabulary of an OCI `linux.seccomp` profile (runtime-spec config-linux.md): actions,
argument operators, architectures, filter flags. Shared by the runtime, which compiles profiles,
and the daemon, which checks a user's profile at create.

Leaf module: standard library only, so that `runtime/` may import it.
"""

from __future__ import annotations

ACTIONS = frozenset({
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
})
UNSUPPORTED_ACTIONS = frozenset({"SCMP_ACT_NOTIFY"})  # seccomp user notification: no listener here
OPERATORS: dict[str, int] = {  # enum scmp_compare
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}
# OCI architecture name -> libseccomp's name for it.
ARCHITECTURES: dict[str, str] = {
    f"SCMP_ARCH_{n.upper()}": n
    for n in ("x86", "x86_64", "x32", "arm", "aarch64", "mips", "mips64", "mips64n32", "mipsel", "mipsel64",
              "mipsel64n32", "ppc", "ppc64", "ppc64le", "s390", "s390x", "parisc", "parisc64", "riscv64",
              "loongarch64", "m68k", "sh", "sheb")
}
# SECCOMP_FILTER_FLAG_* passed to seccomp(2). TSYNC is accepted and has no effect (as in runc):
# the process that loads the filter has a single thread.
FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": 0,
    "SECCOMP_FILTER_FLAG_LOG": 1 << 1,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 1 << 2,
}
MAX_ARG_INDEX = 5
