"""Docker's output shapes: durations, sizes, tables, `--format` templates, times. No gRPC here."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ctrctl.errors import UsageError
from ctrd import timefmt
from ctrd.humanize import human_duration

# The Go template engine (ctrctl.template: its node dataclasses, decimal, html, urllib) is
# imported only when a `--format` template is parsed or rendered: `ctrctl run`, `ps` and `logs`
# import this module for durations and tables, and paid ~10 ms for the engine on every call
# (python -X importtime, clean interpreter, 2026-12-06).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ctrctl.template import TemplateError

_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def ago(then: float, now: float | None = None) -> str:
    return human_duration((time.time() if now is None else now) - then) + " ago"


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
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # what json.dumps gives for it, ~10x sooner (`ps -a` quotes each command)
    # json is imported where it is used in ctrctl (here, --format json, seccomp profiles, info),
    # not with the modules every verb imports: `import json` took 1.9-2.6 ms in a fresh
    # `python3 -S` with re, enum and functools already imported (perf_counter, 2026-12-06,
    # CPython 3.11.7, .pyc compiled), and `ctrctl version` and `ctrctl run` print none.
    import json

    return json.dumps(text, ensure_ascii=False)


def short_id(ident: str) -> str:
    return ident.removeprefix("sha256:")[:12]


def tabulate(rows: Sequence[Sequence[str]], padding: int = 3) -> str:
    """Go's tabwriter as docker uses it: columns padded by 3 spaces, the last one left ragged.
    Column by column with zip and map (C loops): the table of `ps -a` at 1000 containers took
    2.1-2.3 ms with a loop per cell, 1.3-1.7 ms so (same process, alternating, 2026-12-07)."""
    if not rows:
        return ""
    ncols = max(map(len, rows))
    if all(len(r) == ncols for r in rows):
        widths = [max(map(len, col)) + padding for col in zip(*rows, strict=True)][:-1]
    else:  # a row shorter than the widest has no cell there; its last cell is ragged too
        widths = [max((len(r[i]) for r in rows if i < len(r) - 1), default=0) + padding for i in range(ncols - 1)]
    ljust = str.ljust
    lines = [("".join(map(ljust, row[:-1], widths)) + (row[-1] if row else "")).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def _template_error(exc: TemplateError) -> UsageError:
    return UsageError(f"template parsing error: {exc}")


def check_template(fmt: str) -> None:
    """Parse a `--format` value before any request is sent: a bad action is one line, exit 125."""
    body = fmt.removeprefix("table") if fmt.startswith("table") else fmt
    if fmt in ("", "json", "table"):
        return
    from ctrctl import template
    from ctrctl.template import TemplateError

    try:
        template.parse(_escapes(body.strip()))
    except TemplateError as exc:
        raise _template_error(exc) from None


def _escapes(text: str) -> str:
    return text.replace("\\t", "\t").replace("\\n", "\n")


def render_template(fmt: str, obj: Any, headers: Mapping[str, str] | None = None) -> str:
    """docker's `--format` Go template (ctrctl/template) on one object; `\\t` and `\\n` are tab and newline."""
    from ctrctl import template
    from ctrctl.template import TemplateError

    try:
        return template.render(_escapes(fmt), obj, headers)
    except TemplateError as exc:
        raise _template_error(exc) from None


def template_rows(fmt: str, objs: Iterable[Mapping[str, Any]], headers: Mapping[str, str]) -> str:
    """`--format 'table {{.ID}}\\t{{.Names}}'` (with a header row) or a plain per-object template."""
    objs = list(objs)
    if fmt.startswith("table"):
        body = fmt[len("table"):].strip() or "\t".join("{{." + k + "}}" for k in headers)
        header = render_template(body, dict(headers), headers)
        rows = [header.split("\t")] + [render_template(body, o).split("\t") for o in objs]
        return tabulate(rows)
    return "".join(render_template(fmt, o) + "\n" for o in objs)


def list_rows(rows: list[dict[str, str]], fmt: str, *, quiet: bool, quiet_key: str,
              table_keys: Sequence[str], headers: Mapping[str, str]) -> str:
    """An `ls` listing as docker prints it: `-q` (one `quiet_key` a line), `--format json` (one JSON
    object a line), the default table of `table_keys`, or a Go template."""
    if quiet:
        return "".join(r[quiet_key] + "\n" for r in rows)
    if fmt == "json":
        import json  # see quote

        return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    if fmt in ("", "table"):
        return tabulate([[headers[k] for k in table_keys]] + [[r[k] for k in table_keys] for r in rows])
    return template_rows(fmt, rows, headers)


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
