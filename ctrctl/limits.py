"""--ulimit, --sysctl, --shm-size, --group-add and --device-cgroup-rule, parsed as docker's CLI parses
them. The daemon checks the values again (names, namespaced sysctls, rule syntax): here only the
shape, so a typo is one line before any request is sent."""

from __future__ import annotations

from ctrctl import flags
from ctrctl.errors import flag_error
from ctrd.v1 import container_pb2


def _limit(text: str, value: str) -> int:
    try:
        n = int(text, 10)
    except ValueError:
        raise flag_error("--ulimit", value, f"invalid ulimit value {text!r}")
    if n < -1:
        raise flag_error("--ulimit", value, "limits must be -1 (unlimited) or positive")
    return n


def parse_ulimit(value: str) -> container_pb2.Ulimit:
    """name=soft[:hard]; without a hard limit, hard = soft (docker's units.ParseUlimit)."""
    name, sep, limits = value.partition("=")
    if not sep or not name or not limits:
        raise flag_error("--ulimit", value, "use NAME=SOFT[:HARD]")
    soft_text, _, hard_text = limits.partition(":")
    soft = _limit(soft_text, value)
    hard = _limit(hard_text, value) if hard_text else soft
    return container_pb2.Ulimit(name=name, soft=soft, hard=hard)


def parse_sysctl(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key.strip():
        raise flag_error("--sysctl", value, "use KEY=VALUE")
    return key.strip(), val


def parse_shm_size(value: str) -> int:
    size = flags.parse_memory(value, "--shm-size")
    if size <= 0:
        raise flag_error("--shm-size", value, "the size must be positive")
    return size


def parse_device_cgroup_rule(value: str) -> str:
    parts = value.split()
    if not parts or parts[0] not in ("a", "b", "c") or (parts[0] != "a" and len(parts) != 3):
        raise flag_error("--device-cgroup-rule", value, "use 'TYPE MAJOR:MINOR PERMS' (e.g. 'c 1:3 rwm')")
    return " ".join(parts)
