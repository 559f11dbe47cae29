"""Docker's output shapes: durations, sizes, tables, `{{.Field}}` templates, times. No gRPC here."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ctrctl.errors import UsageError
from ctrd import timefmt
from ctrd.humanize import human_duration

_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_FIELD = re.compile(r"\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}")


def ago(then: float, now: float | None = None) -> str:
    return human_duration((time.time() if now is None else now) - then) + " ago"


def status_text(state: str, exit_code: int, started: float, finished: float, now: float | None = None) -> str:
    """docker ps STATUS from a state and its times (the daemon normally sends this ready-made)."""
    now = time.time() if now is None else now
    if state == "running":
        return "Up " + human_duration(now - started)
    if state == "paused":
        return "Up " + human_duration(now - started) + " (Paused)"
    if state == "restarting":
        return f"Restarting ({exit_code}) " + ago(finished, now)
    if state == "exited":
        return f"Exited ({exit_code}) " + ago(finished, now)
    if state == "dead":
        return "Dead"
    return "Created"


def _scaled(size: float, base: int, units: Sequence[str], precision: int) -> str:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def human_size(size: float) -> str:
    """go-units HumanSizeWithPrecision(size, 3): decimal units, "4.26MB" (docker images)."""
    return _scaled(size, 1000, ("B", "kB", "MB", "GB", "TB", "PB"), 3)


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, "1.5MiB" (docker stats)."""
    return _scaled(size, 1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB"), 4)


def ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def quote(text: str) -> str:
    """Go's strconv.Quote, close enough: double quotes, escaped quotes and control characters."""
    return json.dumps(text, ensure_ascii=False)


def short_id(ident: str) -> str:
    return ident.removeprefix("sha256:")[:12]


def tabulate(rows: Sequence[Sequence[str]], padding: int = 3) -> str:
    """Go's tabwriter as docker uses it: columns padded by 3 spaces, the last one left ragged."""
    if not rows:
        return ""
    widths = [0] * max(len(r) for r in rows)
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i] + padding) for i, cell in enumerate(row[:-1])]
        lines.append(("".join(cells) + (row[-1] if row else "")).rstrip())
    return "\n".join(lines) + "\n"


def _lookup(obj: Any, path: str) -> Any:
    for part in [p for p in path.split(".") if p]:
        obj = obj.get(part) if isinstance(obj, Mapping) else None
    return obj


def _render_value(value: Any, as_json: bool) -> str:
    if as_json:
        return json.dumps(value, separators=(",", ":"))
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_render_value(v, False) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_render_value(v, False)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def render_template(template: str, obj: Mapping[str, Any]) -> str:
    """The subset of Go templates people type: `{{.Field}}`, `{{.A.B}}`, `{{json .}}`, `\\t`, `\\n`."""
    text = template.replace("\\t", "\t").replace("\\n", "\n")
    return _FIELD.sub(lambda m: _render_value(_lookup(obj, m.group(2)), bool(m.group(1))), text)


def template_rows(template: str, objs: Iterable[Mapping[str, Any]], headers: Mapping[str, str]) -> str:
    """`--format 'table {{.ID}}\\t{{.Names}}'` (with a header row) or a plain per-object template."""
    objs = list(objs)
    if template.startswith("table"):
        body = template[len("table"):].strip() or "\t".join("{{." + k + "}}" for k in headers)
        header = _FIELD.sub(lambda m: headers.get(m.group(2), m.group(2).split(".")[-1].upper()), body.replace("\\t", "\t"))
        rows = [header.split("\t")] + [render_template(body, o).split("\t") for o in objs]
        return tabulate(rows)
    return "".join(render_template(template, o) + "\n" for o in objs)


def go_time(ts: float) -> str:
    """Go's time.Time.String() in local time, as docker ps --format json prints CreatedAt."""
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %z %Z")


def parse_go_duration(text: str) -> float | None:
    """"10m", "1h30m", "500ms" -> seconds; None when it is not a Go duration."""
    pos, total = 0, 0.0
    for m in _GO_DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


def parse_time(value: str, flag: str, now: float | None = None) -> float:
    """--since/--until: a duration before now (10m), RFC3339 (date or date-time), or unix seconds."""
    if not value:
        return 0.0
    now = time.time() if now is None else now
    duration = parse_go_duration(value)
    if duration is not None:
        return now - duration
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return timefmt.parse_rfc3339(value, local=True)  # docker reads a time without a zone as local time
    except ValueError:
        raise UsageError(f'invalid argument "{value}" for "{flag}" flag: expected a duration (10m), '
                         "an RFC3339 time or unix seconds") from None
