"""`ctrd-runtime` verbs beyond the lifecycle, in runc 1.1's shapes: `--version`, `ps` (pids as
JSON, or the host's ps filtered to the container's processes), `events` (`--stats` once, or a
stats stream every `--interval` with OOM events)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from runtime import defaults, errors, stats_json
from runtime.container import Container, Status

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def package_version() -> str:
    from importlib import metadata  # only for --version and features: not on every call's import path

    try:
        return metadata.version("ctrd")
    except metadata.PackageNotFoundError:
        return "unknown"


def version_text() -> str:
    """runc's shape (`runc version X` first, `spec: ...`), which dockerd and containerd parse."""
    import platform

    ours = package_version()
    return f"ctrd-runtime version {ours}\nspec: {defaults.OCI_VERSION}\npython: {platform.python_version()}"


class VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(version_text())
        parser.exit()


def parse_duration(text: str) -> float:
    """A Go duration ("5s", "500ms", "1m30s") in seconds; must be positive, as runc requires."""
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"--interval: {text!r} is not a duration like 5s or 500ms")
    if total <= 0:
        raise ValueError("--interval: duration interval must be greater than 0")
    return total


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))  # Go's encoding/json: compact


def cmd_ps(a: argparse.Namespace) -> int:
    c = Container.load(a.id, state_dir=a.root)
    pids = c.pids()
    if a.format == "json":
        print(_dump(pids))
        return 0
    args = list(a.ps_args)
    if args[:1] == ["--"]:
        args = args[1:]  # `ps ID -- -ef`: the separator is ours, not ps's
    p = subprocess.run(["ps", *(args or ["-ef"])], capture_output=True, text=True)
    if p.returncode != 0:
        raise errors.RuntimeErr(f"ps exited with status {p.returncode}: {(p.stderr or p.stdout).strip()}")
    lines = p.stdout.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise errors.RuntimeErr("couldn't find PID field in ps output")
    col = header.index("PID")
    print(lines[0])
    wanted = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            print(line)
    return 0


def cmd_events(a: argparse.Namespace) -> int:
    c = Container.load(a.id, state_dir=a.root)
    if c.status() is Status.STOPPED:
        raise errors.IncorrectStatus(f"container with id {a.id} is not running")
    if a.stats:
        print(_dump({"type": "stats", "id": a.id, "data": stats_json.stats(c.cgroup)}))
        return 0
    interval = parse_duration(a.interval)
    ooms = c.stats().oom_kills
    while c.status() is not Status.STOPPED:
        now = c.stats().oom_kills
        if now > ooms:
            print(_dump({"type": "oom", "id": a.id}))
        ooms = now
        print(_dump({"type": "stats", "id": a.id, "data": stats_json.stats(c.cgroup)}), flush=True)
        sys.stdout.flush()
        time.sleep(interval)  # the stream's own period, as runc's ticker
    return 0
