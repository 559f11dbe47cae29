"""docker's prune filters: until=<time>, label=KEY[=VALUE], label!=KEY[=VALUE]."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from ctrd import errdefs, timefmt

PRUNE_KEYS = ("until", "label", "label!")


def _until(value: str, now: float) -> float:
    v = value.strip()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if v and v[-1] in units and v[:-1].replace(".", "", 1).isdigit():
            return now - float(v[:-1]) * units[v[-1]]
        if v.replace(".", "", 1).isdigit():
            return float(v)
        return timefmt.parse_rfc3339(v)
    except ValueError:
        raise errdefs.InvalidArgument(f"invalid filter 'until={value}'") from None


def _label_match(labels: Mapping[str, str], spec: str) -> bool:
    key, eq, value = spec.partition("=")
    if key not in labels:
        return False
    return not eq or labels[key] == value


class PruneFilter:
    def __init__(self, pairs: Sequence[tuple[str, str]], now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.until: float | None = None
        self.labels: list[str] = []
        self.not_labels: list[str] = []
        for key, value in pairs:
            if key not in PRUNE_KEYS:
                raise errdefs.InvalidArgument(f"invalid filter '{key}'")
            if key == "until":
                self.until = _until(value, now)
            elif key == "label":
                self.labels.append(value)
            else:
                self.not_labels.append(value)

    def matches(self, created: float, labels: Mapping[str, str]) -> bool:
        if self.until is not None and created >= self.until:
            return False
        if not all(_label_match(labels, s) for s in self.labels):
            return False
        return not any(_label_match(labels, s) for s in self.not_labels)
