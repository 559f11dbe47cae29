"""A signal from a request or a record (`ctrd.signals` parses it): InvalidArgument naming the field."""

from __future__ import annotations

from ctrd import signals
from ctrd.errdefs import InvalidArgument


def parse_signal(value: str, field: str = "signal") -> int:
    """Signal number for a name or number as docker accepts it; InvalidArgument naming `field` otherwise."""
    try:
        return signals.parse(value)
    except ValueError as exc:
        raise InvalidArgument(f"{field}: {exc}") from None
