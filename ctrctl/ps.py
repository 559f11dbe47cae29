"""`ps` rows: ContainerSummary -> docker's fields, filters and output shapes (no gRPC imports)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from ctrctl.errors import UsageError
from ctrctl.format import ago, ellipsis, go_time, quote, short_id, tabulate, template_rows

STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
FILTER_KEYS = ("id", "name", "status", "label", "ancestor", "network", "health", "exited", "before", "since", "volume")
HEALTH = ("starting", "healthy", "unhealthy", "none")
CLIENT_KEYS = ("id", "name", "status", "label")  # matched here too; the rest only by the daemon
HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES",
    "State": "STATE", "Labels": "LABELS", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
}
TABLE = ("ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names")


class PortLike(Protocol):
    ip: str
    public_port: int
    private_port: int
    type: str


class SummaryLike(Protocol):
    """The fields of ctrd.v1.ContainerSummary that ps reads."""

    id: str
    image: str
    command: str
    created: int
    state: str
    status: str
    local_volumes: int

    @property
    def names(self) -> Sequence[str]: ...
    @property
    def ports(self) -> Sequence[PortLike]: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def mounts(self) -> Sequence[str]: ...
    @property
    def networks(self) -> Sequence[str]: ...


class Filters(NamedTuple):  # not a dataclass: start-up time (ctrctl/parser.py's _Subs)
    values: dict[str, list[str]]

    def for_daemon(self) -> dict[str, str]:
        """Every key but name (a regular expression, matched here) goes to the daemon, its values
        joined by newlines (the daemon ORs them, as docker)."""
        return {k: "\n".join(v) for k, v in self.values.items() if k != "name"}

    def match(self, c: SummaryLike) -> bool:
        return all(any(_match_one(key, value, c) for value in values)
                   for key, values in self.values.items() if key in CLIENT_KEYS)


def parse_filters(raw: Iterable[str]) -> Filters:
    values: dict[str, list[str]] = {}
    for item in raw:
        key, eq, value = item.partition("=")
        if not eq or key not in FILTER_KEYS:
            raise UsageError(f"invalid filter '{item}' ({'=, '.join(FILTER_KEYS)}=)")
        if key == "status" and value not in STATES:
            raise UsageError(f"invalid filter 'status={value}' ({', '.join(STATES)})")
        if key == "health" and value not in HEALTH:
            raise UsageError(f"invalid filter 'health={value}' ({', '.join(HEALTH)})")
        if key == "exited" and not value.lstrip("-").isdigit():
            raise UsageError(f"invalid filter 'exited={value}' (an exit code)")
        if key in ("before", "since", "ancestor", "network", "volume") and not value:
            raise UsageError(f"invalid filter '{item}' (a value is required)")
        values.setdefault(key, []).append(value)
    return Filters(values)


def _match_one(key: str, value: str, c: SummaryLike) -> bool:
    if key == "id":
        return c.id.startswith(value)
    if key == "status":
        return c.state == value
    if key == "label":
        k, eq, v = value.partition("=")
        return k in c.labels and (not eq or c.labels[k] == v)
    names = [n.removeprefix("/") for n in c.names]
    try:
        pattern = re.compile(value)
    except re.error:
        return any(value in n for n in names)
    return any(pattern.search(n) for n in names)


def ports_text(ports: Iterable[PortLike]) -> str:
    """docker's PORTS column: "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 443/tcp"."""
    if not ports:
        return ""
    out: list[str] = []
    for p in ports:
        proto = p.type or "tcp"
        if p.public_port:
            ip = p.ip or "0.0.0.0"
            ip = f"[{ip}]" if ":" in ip else ip
            text = f"{ip}:{p.public_port}->{p.private_port}/{proto}"
        else:
            text = f"{p.private_port}/{proto}"
        if text not in out:
            out.append(text)
    return ", ".join(out)


def row(c: SummaryLike, *, trunc: bool = True, now: float | None = None,
        keys: Sequence[str] | None = None) -> dict[str, str]:
    """The row's fields; only `keys` when given (the table's columns: CreatedAt's local-time
    formatting alone was a third of `ps -a` at 1000 containers)."""
    want = HEADERS.keys() if keys is None else keys
    out: dict[str, str] = {}
    for k in want:
        if k == "ID":
            out[k] = short_id(c.id) if trunc else c.id
        elif k == "Image":
            out[k] = c.image
        elif k == "Command":
            out[k] = quote(ellipsis(c.command, 20) if trunc else c.command)
        elif k == "CreatedAt":
            out[k] = go_time(c.created)
        elif k == "RunningFor":
            out[k] = ago(c.created, now)
        elif k == "Status":
            out[k] = c.status
        elif k == "State":
            out[k] = c.state
        elif k == "Ports":
            out[k] = ports_text(c.ports)
        elif k == "Names":
            names = c.names
            out[k] = names[0].removeprefix("/") if len(names) == 1 else ",".join(n.removeprefix("/") for n in names)
        elif k == "Labels":
            out[k] = ",".join(f"{k}={v}" for k, v in sorted(c.labels.items()))
        elif k == "Mounts":
            out[k] = ",".join(ellipsis(m, 15) if trunc else m for m in c.mounts)
        elif k == "LocalVolumes":
            out[k] = str(c.local_volumes)
        elif k == "Networks":
            out[k] = ",".join(c.networks)
    return out


def render(containers: Sequence[SummaryLike], *, fmt: str, quiet: bool, trunc: bool,
           now: float | None = None) -> str:
    ordered = sorted(containers, key=lambda c: c.created, reverse=True)
    if quiet:
        return "".join((short_id(c.id) if trunc else c.id) + "\n" for c in ordered)
    if fmt in ("", "table"):
        table: list[Sequence[str]] = [[HEADERS[k] for k in TABLE]]
        table += [list(row(c, trunc=trunc, now=now, keys=TABLE).values()) for c in ordered]
        return tabulate(table)
    rows = [row(c, trunc=trunc, now=now) for c in ordered]
    if fmt == "json":
        return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
    objs: list[dict[str, Any]] = [{**r, "Label": _label_of(c)} for r, c in zip(rows, ordered, strict=True)]
    return template_rows(fmt, objs, HEADERS)


def _label_of(c: SummaryLike) -> Any:
    """docker's {{.Label "key"}}: the value of one label ("" when absent)."""
    labels = dict(c.labels)
    return lambda key: labels.get(str(key), "")
