"""RFC 3339 times as docker and runc write them, and one parser for what they read.

- `rfc3339_nano(ns)`: Go's RFC3339Nano in UTC, trailing fraction zeros cut (json-file log lines,
  runtime state and logs, image creation times).
- `rfc3339(ts)`: all nine fraction digits in UTC, Go's zero time for "never" (container state).
- `rfc3339_local(ns)`: all nine digits in local time with its offset (`docker events`).
- `parse_rfc3339(text)`: any of those, fewer or more fraction digits, `Z` or an offset, or a bare date.

Leaf module: standard library only, so that `runtime/` may import it; the shim calls
`rfc3339_nano` per log line, so it is plain `time` arithmetic.
"""

from __future__ import annotations

import time

# datetime and re only for parsing: the writers are on the error path of every `ctrd-runtime`
# call (its --log line), where `re` alone is ~5 ms (runtime/cli.py has the measurement).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time: docker's "never"
_RFC3339_PATTERN = (
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d+))?)?"
    r"(Z|z|[+-]\d{2}:?\d{2})?"
)
_RFC3339: re.Pattern[str] | None = None


def _zone(offset: int) -> str:
    if not offset:
        return "Z"
    sign = "+" if offset > 0 else "-"
    offset = abs(offset)
    return f"{sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}"


def rfc3339_nano(ns: int) -> str:
    """`ns` (unix nanoseconds) in UTC, fraction without trailing zeros (none when whole)."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        return f"{base}.{frac:09d}".rstrip("0") + "Z"
    return base + "Z"


def rfc3339(ts: float) -> str:
    """`ts` (unix seconds) in UTC with nine fraction digits; 0 or less means never (ZERO_TIME)."""
    if ts <= 0:
        return ZERO_TIME
    whole = int(ts)
    nanos = round((ts - whole) * 1e9)  # from the fraction alone: ts * 1e9 would lose digits
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{nanos:09d}Z"


def rfc3339_local(ns: int) -> str:
    """`ns` in local time with nine fraction digits and the local offset (Z at UTC)."""
    secs, frac = divmod(ns, 1_000_000_000)
    tm = time.localtime(secs)
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + f".{frac:09d}" + _zone(tm.tm_gmtoff)


def now() -> str:
    """The current time as `rfc3339_nano` writes it."""
    return rfc3339_nano(time.time_ns())


def parse_rfc3339(text: str, *, local: bool = False) -> float:
    """Unix seconds for an RFC 3339 time; "" and Go's zero time give 0.0.

    Takes any number of fraction digits (nanoseconds are kept to the float's precision), `Z`,
    `+hh:mm` or `-hhmm`, a bare date, and minutes without seconds. A time without a zone is UTC,
    or local time with `local` (what docker does for --since/--until). ValueError otherwise."""
    import datetime as _dt
    import re

    global _RFC3339
    if not text or text.startswith("0001-01-01"):
        return 0.0
    if _RFC3339 is None:
        _RFC3339 = re.compile(_RFC3339_PATTERN)
    m = _RFC3339.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second, digits, zone = m.groups()
    tz: _dt.tzinfo | None
    if zone in ("Z", "z"):
        tz = _dt.UTC
    elif zone:
        sign = -1 if zone[0] == "-" else 1
        hh, mm = int(zone[1:3]), int(zone[-2:])
        tz = _dt.timezone(sign * _dt.timedelta(hours=hh, minutes=mm))
    else:
        tz = None if local else _dt.UTC
    dt = _dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=tz)
    frac = int(digits[:9].ljust(9, "0")) / 1e9 if digits else 0.0
    return dt.timestamp() + frac
