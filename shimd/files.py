"""The shim's state dir: where it is (<exec-root>/shims/<id>) and its atomic state files (a kill -9
at any instant leaves parseable files)."""

from __future__ import annotations

import json
import os
from json.encoder import encode_basestring_ascii as _quote  # json.dumps' own (C) quoting
from pathlib import Path
from typing import Any

from ctrd import errdefs, ids

EXIT_FILE = "exit.json"
RUNTIME_FILE = "runtime.json"
PID_FILE = "shim.pid"
SOCKET_FILE = "shim.sock"
UNKNOWN_EXIT = 255


def state_dir_for(exec_root: Path, container_id: str) -> Path:
    if not ids.valid_id(container_id):
        raise errdefs.InvalidArgument(f"id: {container_id!r} is not a valid container id")
    return exec_root / "shims" / container_id


def write_atomic(path: Path | str, data: bytes) -> None:
    """temp file + rename: a kill -9 of the shim (or of ctrd) at any instant leaves the old or
    the new file. No fsync: these files are runtime state under the exec-root (a tmpfs /run on
    a usual host) and only describe processes and cgroups that a machine crash ends anyway; a
    file a machine crash leaves empty reads as missing (read_json: None), i.e. exit unknown."""
    target = os.fspath(path)
    head, _, name = target.rpartition("/")  # str ops, not pathlib: less code for each shim to run
    tmp = f"{head}/.{name}.tmp" if head or target.startswith("/") else f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    os.replace(tmp, target)


_ENCODER = json.JSONEncoder(sort_keys=True)  # one encoder: json.dumps(sort_keys=...) builds a new one per call


def write_json(path: Path | str, obj: dict[str, Any]) -> None:
    write_atomic(path, (flat_json(obj) or _ENCODER.encode(obj)).encode())


def flat_json(obj: dict[str, Any]) -> str | None:
    """json.dumps(obj, sort_keys=True), byte for byte, for a dict whose keys are str and whose
    values are str, int, finite float, bool or None (the shim's runtime.json and exit.json); None
    for anything else. Built with the encoder's C string quoting only: the JSONEncoder's Python
    code (encode, iterencode, the C encoder's set-up) is pages each shim would copy from the
    launcher, measured 2026-12-08 on the 2-core machine: ~0.2 MB in a fork of a warmed launcher
    for one small json.dumps, against ~0.05 MB for an f-string."""
    parts = []
    for key in sorted(obj):
        value = obj[key]
        if type(key) is not str:
            return None
        if value is None:
            text = "null"
        elif value is True:
            text = "true"
        elif value is False:
            text = "false"
        elif type(value) is int:
            text = int.__repr__(value)
        elif type(value) is str:
            text = _quote(value)
        elif type(value) is float and value - value == 0.0:  # finite: NaN and the infinities are not
            text = float.__repr__(value)
        else:
            return None
        parts.append(f"{_quote(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def remove_tree(path: Path) -> None:
    """rm -r that never descends into a mount point (a rootfs mount belongs to the daemon)."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    if os.path.ismount(path):
        return
    for child in path.iterdir():
        remove_tree(child)
    try:
        path.rmdir()
    except OSError:
        pass
