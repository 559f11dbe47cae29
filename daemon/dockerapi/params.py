"""Decoding of request values the Docker API shares between endpoints: JSON lists of strings and
docker's since/until time parameters. Errors name the field."""

from __future__ import annotations

from typing import Any

from ctrd import timefmt
from ctrd.errdefs import InvalidArgument


def strs(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{where}: want a list of strings")
    return list(value)


def time_param(value: str, now: float, name: str) -> float:
    """docker's since/until: unix seconds (with fraction), an RFC 3339 time, or a duration ago."""
    if not value:
        return 0.0
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return timefmt.parse_rfc3339(value)
    except ValueError:
        pass
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    for suffix in ("ns", "us", "ms", "s", "m", "h"):
        if value.endswith(suffix):
            try:
                return now - float(value[: -len(suffix)]) * units[suffix]
            except ValueError:
                break
    raise InvalidArgument(f"{name}: invalid time {value!r}")

