"""Client-side parsing and validation of run/create flag values, the way docker's CLI does it.

Pure functions, no gRPC: each returns plain values or raises UsageError naming the flag, so a
bad value is reported before any request is sent. The daemon validates again.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from ctrctl.errors import UsageError, flag_error
from ctrd import ids, signals

_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_ENV_KEY_WS = re.compile(r"\s")
_RESTART_NAMES = ("no", "always", "on-failure", "unless-stopped")


class Port(NamedTuple):  # not a dataclass: start-up time (ctrctl/parser.py's _Subs)
    host_ip: str
    host_port: int
    container_port: int
    protocol: str


def ram_in_bytes(value: str) -> int:
    """go-units RAMInBytes: "512m", "1.5g", "64MiB" (binary multiples). Raises ValueError."""
    from decimal import Decimal, InvalidOperation  # only when a size is given: start-up time

    m = _SIZE.match(value.strip())
    if m is None:
        raise ValueError(f"invalid size: '{value}'")
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        raise ValueError(f"invalid size: '{value}'")
    return int(number * _UNITS[(m.group(2) or "").lower()])


def parse_memory(value: str, flag: str = "-m, --memory") -> int:
    try:
        return ram_in_bytes(value)
    except ValueError as exc:
        raise flag_error(flag, value, str(exc))


def parse_cpus(value: str) -> int:
    """--cpus as nano CPUs (cpus * 1e9), exact, like docker's NanoCPUs."""
    from decimal import Decimal, InvalidOperation

    try:
        cpus = Decimal(value)
        if not cpus.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise flag_error("--cpus", value, f"failed to parse {value} as a rational number")
    if cpus < 0:
        raise flag_error("--cpus", value, "cpus must not be negative")
    nano = cpus * 1_000_000_000
    if nano != nano.to_integral_value():
        raise flag_error("--cpus", value, "value is too precise")
    return int(nano)


def parse_int(value: str, flag: str, *, minimum: int | None = None) -> int:
    try:
        number = int(value, 10)
    except ValueError:
        raise flag_error(flag, value, "strconv.ParseInt: parsing: invalid syntax")
    if minimum is not None and number < minimum:
        raise flag_error(flag, value, f"must be at least {minimum}")
    return number


def _port_range(text: str, what: str, flag: str, raw: str, *, allow_zero: bool) -> tuple[int, int]:
    lo_s, sep, hi_s = text.partition("-")
    try:
        lo = int(lo_s, 10)
        hi = int(hi_s, 10) if sep else lo
    except ValueError:
        raise flag_error(flag, raw, f"invalid {what}: {text}")
    low_ok = lo >= 0 if allow_zero else lo >= 1
    if not (low_ok and lo <= hi <= 65535):
        raise flag_error(flag, raw, f"invalid {what}: {text}")
    return lo, hi


def parse_publish(raw: str) -> list[Port]:
    """-p [ip:][hostPort:]containerPort[/proto], ranges like 8000-8001:80-81."""
    flag = "-p, --publish"
    spec, _, proto = raw.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise flag_error(flag, raw, f"invalid proto: {proto}")
    ip = ""
    if spec.startswith("["):  # [ipv6]:host:container
        end = spec.find("]")
        if end < 0:
            raise flag_error(flag, raw, "invalid ip address")
        ip, spec = spec[1:end], spec[end + 1 :].removeprefix(":")
        parts = spec.split(":")
    else:
        parts = spec.split(":")
        if len(parts) == 3:
            ip = parts.pop(0)
    if len(parts) == 1:
        host, container = "", parts[0]
    elif len(parts) == 2:
        host, container = parts
    else:
        raise flag_error(flag, raw, "invalid port format")
    if ip:
        import ipaddress  # only when a flag has an address: see parse_dns

        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise flag_error(flag, raw, f"invalid ip address: {ip}")
    if not container:
        raise flag_error(flag, raw, "no port specified")
    c_lo, c_hi = _port_range(container, "containerPort", flag, raw, allow_zero=False)
    if host:
        h_lo, h_hi = _port_range(host, "hostPort", flag, raw, allow_zero=True)
        if h_hi - h_lo != c_hi - c_lo:
            raise flag_error(flag, raw, "host and container port ranges must be the same size")
    else:
        h_lo = 0
    return [
        Port(ip, h_lo + i if host else 0, c_lo + i, proto) for i in range(c_hi - c_lo + 1)
    ]


def parse_restart(raw: str) -> tuple[str, int]:
    """--restart no|always|unless-stopped|on-failure[:N] -> (name, maximum_retry_count)."""
    name, sep, count = raw.partition(":")
    if name not in _RESTART_NAMES:
        raise flag_error("--restart", raw, f"invalid restart policy '{name}'")
    if not sep:
        return name, 0
    if name != "on-failure":
        raise flag_error("--restart", raw, f"maximum retry count cannot be used with restart policy '{name}'")
    try:
        n = int(count, 10)
    except ValueError:
        raise flag_error("--restart", raw, f"maximum retry count must be an integer: {count}")
    if n < 0:
        raise flag_error("--restart", raw, "maximum retry count cannot be negative")
    return name, n


def _env_entry(entry: str, environ: dict[str, str] | os._Environ[str], flag: str) -> str | None:
    key, eq, _ = entry.partition("=")
    if not key or _ENV_KEY_WS.search(key):
        raise flag_error(flag, entry, f"variable '{key}' contains whitespaces" if key else "no variable name")
    if eq:
        return entry
    # KEY alone takes its value from the client's environment; unset means omitted (docker).
    value = environ.get(key)
    return None if value is None else f"{key}={value}"


def parse_env(
    env: list[str], env_files: list[str], environ: dict[str, str] | os._Environ[str] | None = None
) -> list[str]:
    """--env-file entries first, then -e (later ones win in the daemon, as in docker)."""
    source = os.environ if environ is None else environ
    out: list[str] = []
    for path in env_files:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as exc:
            raise flag_error("--env-file", path, f"open {path}: {exc.strerror or exc}")
        for line in lines:
            stripped = line.lstrip()
            if not stripped or stripped.startswith("#"):
                continue
            item = _env_entry(stripped, source, "--env-file")
            if item is not None:
                out.append(item)
    for entry in env:
        item = _env_entry(entry, source, "-e, --env")
        if item is not None:
            out.append(item)
    return out


def parse_labels(labels: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in labels:
        key, _, value = raw.partition("=")
        if not key:
            raise flag_error("-l, --label", raw, "label key must not be empty")
        out[key] = value
    return out


LOG_ATTR_OPTS = ("labels", "env", "labels-regex", "env-regex")


def log_attr_opts(opts: list[str]) -> dict[str, str]:
    """--log-opt labels=a,b / env=X,Y / *-regex=RE: what becomes each log entry's attrs."""
    out: dict[str, str] = {}
    for raw in opts:
        key, eq, value = raw.partition("=")
        if eq and key in LOG_ATTR_OPTS:
            out[key] = value
    return out


def parse_log_opts(opts: list[str]) -> tuple[str, int]:
    """--log-opt max-size=10m / max-file=3 -> (max_size, max_file)."""
    size, files = "", 0
    for raw in opts:
        key, eq, value = raw.partition("=")
        if not eq:
            raise flag_error("--log-opt", raw, "expected key=value")
        if key == "max-size":
            try:
                ram_in_bytes(value)
            except ValueError as exc:
                raise flag_error("--log-opt", raw, str(exc))
            size = value
        elif key == "max-file":
            files = parse_int(value, "--log-opt", minimum=1)
        elif key not in LOG_ATTR_OPTS:
            raise flag_error("--log-opt", raw, f"unknown log opt '{key}' (max-size, max-file, {', '.join(LOG_ATTR_OPTS)})")
    if files > 1 and not size:
        raise flag_error("--log-opt", "max-file", "max-file requires max-size")
    return size, files


def parse_add_host(raw: str) -> str:
    """--add-host host:ip (or host=ip) -> "host:ip"."""
    if "=" in raw:
        host, _, ip = raw.partition("=")
    else:
        host, _, ip = raw.partition(":")
    if not host or not ip:
        raise flag_error("--add-host", raw, "bad format for add-host (expected host:ip)")
    if ip != "host-gateway":
        import ipaddress  # see parse_dns

        try:
            ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            raise flag_error("--add-host", raw, f"invalid IP address in add-host: {ip}")
    return f"{host}:{ip.strip('[]')}"


def parse_dns(raw: str) -> str:
    # ipaddress is imported by the flags that carry an address, not with this module (imported by
    # every run, create and ps): 1.35-1.56 ms in a fresh `python3 -S` with re and functools already
    # imported (perf_counter, 2026-12-06, CPython 3.11.7, .pyc compiled).
    import ipaddress

    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise flag_error("--dns", raw, f"{raw} is not an ip address")


def validate_name(name: str) -> str:
    if not ids.valid_name(name):
        raise UsageError(f"invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.removeprefix("/")


def parse_signal(raw: str, flag: str) -> str:
    """A signal name (KILL, SIGKILL, RTMIN+3) or number 1..64; returns it as given after checking it."""
    try:
        signals.parse(raw)
    except ValueError as exc:
        raise flag_error(flag, raw, str(exc)) from None
    return raw
