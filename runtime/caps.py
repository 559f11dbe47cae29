"""Linux capability names and the bit arithmetic the setup needs."""

from __future__ import annotations

from collections.abc import Iterable

# Index = capability number (include/uapi/linux/capability.h).
NAMES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
NUMBERS: dict[str, int] = {name: i for i, name in enumerate(NAMES)}


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


# Read once at import: the child must not read host files after pivot_root.
LAST_CAP = _last_cap()


def mask(names: Iterable[str]) -> int:
    """Bit mask of the named capabilities the running kernel knows (newer names are skipped)."""
    bits = 0
    for name in names:
        n = NUMBERS[name]
        if n <= LAST_CAP:
            bits |= 1 << n
    return bits


def numbers(names: Iterable[str]) -> list[int]:
    return [NUMBERS[n] for n in names if NUMBERS[n] <= LAST_CAP]
