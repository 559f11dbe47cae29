"""System verbs: events, info, version."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ctrctl.client import Client, RpcError, daemon_error
from ctrctl.errors import EXIT_FAILURE, UsageError
from ctrctl.format import bytes_size, parse_time, render_template
from ctrd import errdefs, timefmt
from ctrd.v1 import system_pb2

EVENT_FILTERS = ("container", "event", "type", "image")


def _event_filters(raw: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in raw:
        key, eq, value = item.partition("=")
        if not eq or key not in EVENT_FILTERS:
            raise UsageError(f"invalid filter '{item}' ({'=, '.join(EVENT_FILTERS)}=)")
        out.setdefault(key, []).append(value)
    return out


def _event_matches(ev: system_pb2.EventsResponse, filters: dict[str, list[str]]) -> bool:
    def one(key: str, value: str) -> bool:
        if key == "container":
            return ev.id.startswith(value) or ev.attributes.get("name") == value
        if key == "event":
            return ev.action == value or ev.action.split(":")[0] == value
        if key == "type":
            return ev.type == value
        return ev.attributes.get("image") == value

    return all(any(one(k, v) for v in values) for k, values in filters.items())


def event_line(ev: system_pb2.EventsResponse) -> str:
    """docker events' default line: time type action id (k=v, ...)."""
    attrs = ", ".join(f"{k}={v}" for k, v in sorted(ev.attributes.items()))
    return f"{timefmt.rfc3339_local(ev.time_nano)} {ev.type} {ev.action} {ev.id}" + (f" ({attrs})" if attrs else "")


def event_object(ev: system_pb2.EventsResponse) -> dict[str, Any]:
    return {"Type": ev.type, "Action": ev.action, "Actor": {"ID": ev.id, "Attributes": dict(ev.attributes)},
            "scope": "local", "time": ev.time_nano // 1_000_000_000, "timeNano": ev.time_nano}


def events(args: argparse.Namespace) -> int:
    filters = _event_filters(args.filter)
    req = system_pb2.EventsRequest(since=parse_time(args.since, "--since"), until=parse_time(args.until, "--until"))
    for key, values in filters.items():
        if len(values) == 1:
            req.filters[key] = values[0]
    import json  # (ctrctl.format.quote says why it is imported where used)

    client = Client(args.address)
    call = client.system.Events(req)
    try:
        for ev in call:
            if not _event_matches(ev, filters):
                continue
            if args.format == "json":
                line = json.dumps(event_object(ev), sort_keys=True)
            elif args.format:
                line = render_template(args.format, event_object(ev))
            else:
                line = event_line(ev)
            print(line, flush=True)
    except RpcError as err:
        raise daemon_error(client.native(err), EXIT_FAILURE)
    finally:
        call.cancel()
    return 0


_INFO_LINES = (
    ("Containers", "Containers", 0), ("ContainersRunning", "Running", 1), ("ContainersPaused", "Paused", 1),
    ("ContainersStopped", "Stopped", 1), ("Images", "Images", 0), ("ServerVersion", "Server Version", 0),
    ("Driver", "Storage Driver", 0), ("LoggingDriver", "Logging Driver", 0), ("CgroupDriver", "Cgroup Driver", 0),
    ("CgroupVersion", "Cgroup Version", 0), ("KernelVersion", "Kernel Version", 0),
    ("OperatingSystem", "Operating System", 0), ("OSType", "OSType", 0), ("Architecture", "Architecture", 0),
    ("NCPU", "CPUs", 0), ("MemTotal", "Total Memory", 0), ("Name", "Name", 0), ("ID", "ID", 0),
    ("DockerRootDir", "Docker Root Dir", 0), ("Debug", "Debug Mode", 0),
    ("LiveRestoreEnabled", "Live Restore Enabled", 0),
)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        import json

        return json.dumps(v, separators=(",", ":"))
    return str(v)


def info_text(data: dict[str, Any]) -> str:
    lines = ["Server:"]
    for key, label, depth in _INFO_LINES:
        if key in data:
            value = bytes_size(data[key]) if key == "MemTotal" and isinstance(data[key], int) else _value(data[key])
            lines.append(" " * (depth + 1) + f"{label}: {value}")
    known = {k for k, _, _ in _INFO_LINES}
    lines += [f" {k}: {_value(v)}" for k, v in data.items() if k not in known]
    return "\n".join(lines) + "\n"


def info(args: argparse.Namespace) -> int:
    import json

    client = Client(args.address)
    try:
        data = json.loads(client.call(client.system.Info, system_pb2.InfoRequest()).json)
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE)
    if args.format == "json" or args.format.strip() == "{{json .}}":
        print(json.dumps(data))
    elif args.format:
        print(render_template(args.format, data))
    else:
        sys.stdout.write(info_text(data))
    return 0


def client_version() -> dict[str, str]:
    from ctrd.version import __version__  # not importlib.metadata: ~20 ms here (ctrd/version.py)

    u = os.uname()  # what `platform` would answer, without its ~1.4 ms import
    return {"Version": __version__, "PythonVersion": sys.version.split()[0],
            "Os": u.sysname.lower(), "Arch": u.machine}


def version(args: argparse.Namespace) -> int:
    c = client_version()
    client = Client(args.address)
    server: dict[str, str] | None = None
    error: Exception | None = None
    try:
        s = client.call(client.system.Version, system_pb2.VersionRequest())
        server = {"Version": s.version, "ApiVersion": s.api_version, "PythonVersion": s.python_version,
                  "Os": s.os, "Arch": s.arch, "KernelVersion": s.kernel_version, "Runtime": s.runtime}
    except Exception as exc:  # print the client half first, then the error (docker does)
        error = exc
    if args.format:
        import json

        obj = {"Client": c, "Server": server}
        print(json.dumps(obj) if args.format == "json" else render_template(args.format, obj))
    else:
        out = ["Client:", f" Version:           {c['Version']}", f" Python version:    {c['PythonVersion']}",
               f" OS/Arch:           {c['Os']}/{c['Arch']}"]
        if server is not None:
            out += ["", "Server:", f" Version:           {server['Version']}",
                    f" API version:       {server['ApiVersion']}",
                    f" Python version:    {server['PythonVersion']}",
                    f" OS/Arch:           {server['Os']}/{server['Arch']}",
                    f" Kernel Version:    {server['KernelVersion']}",
                    f" Runtime:           {server['Runtime']}"]
        print("\n".join(out), flush=True)
    if error is not None:
        if isinstance(error, errdefs.CtrdError):
            raise daemon_error(error, EXIT_FAILURE)
        raise error
    return 0
