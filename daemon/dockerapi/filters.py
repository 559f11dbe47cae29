"""docker's `filters` query parameter: JSON {"key": {"value": true}} (or the old {"key": ["value"]})."""

from __future__ import annotations

import json
from collections.abc import Mapping

from ctrd.errdefs import InvalidArgument
from daemon.events import Event

Filters = dict[str, list[str]]


def parse(raw: str, allowed: frozenset[str]) -> Filters:
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise InvalidArgument(f"filters: invalid JSON: {raw[:200]!r}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("filters: want a JSON object")
    out: Filters = {}
    for key, values in doc.items():
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")
        if isinstance(values, dict):
            out[key] = [str(v) for v, on in values.items() if on]
        elif isinstance(values, list):
            out[key] = [str(v) for v in values]
        else:
            raise InvalidArgument(f"filters: {key}: want an object or a list")
    return out


def label_matches(labels: Mapping[str, str], wanted: list[str]) -> bool:
    """Every `k` or `k=v` given must hold (docker ANDs label filters)."""
    for item in wanted:
        k, sep, v = item.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


def event_matches(f: Filters, ev: Event) -> bool:
    attrs = ev.attributes
    for key, values in f.items():
        if not values:
            continue
        if key == "label":
            if not label_matches(attrs, values):
                return False
            continue
        if key == "container":
            ok = ev.type == "container" and any(v in (ev.id, attrs.get("name", "")) or ev.id.startswith(v)
                                                for v in values)
        elif key == "event":
            ok = ev.action in values
        elif key == "type":
            ok = ev.type in values
        elif key == "image":
            ok = attrs.get("image", "") in values or (ev.type == "image" and ev.id in values)
        elif key == "network":
            ok = ev.type == "network" and (ev.id in values or attrs.get("name", "") in values)
        else:
            ok = True
        if not ok:
            return False
    return True
