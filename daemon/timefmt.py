"""docker's time strings: RFC 3339 with nanoseconds, UTC, and Go's zero time for "never"."""

from __future__ import annotations

import datetime as _dt

ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(ts: float) -> str:
    """`ts` (unix seconds) as RFC 3339 with nanoseconds; 0 means never (Go's zero time)."""
    if ts <= 0:
        return ZERO_TIME
    whole = int(ts)
    nanos = round((ts - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    base = _dt.datetime.fromtimestamp(whole, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def parse_rfc3339(text: str) -> float:
    """The inverse of `rfc3339` (also accepts fewer fraction digits and +00:00); zero time → 0."""
    if not text or text.startswith("0001-01-01"):
        return 0.0
    body = text.rstrip("Z").split("+")[0]
    frac = 0.0
    if "." in body:
        body, digits = body.split(".", 1)
        frac = int(digits[:9].ljust(9, "0")) / 1e9
    dt = _dt.datetime.strptime(body, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=_dt.UTC)
    return dt.timestamp() + frac
