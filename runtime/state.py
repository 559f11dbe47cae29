"""A container's persisted record: <state_dir>/<id>/state.json (written atomically), plus the
exec fifo of a CLI-created container that has not been started yet."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ctrd import ids
from runtime.errors import ContainerNotFound, InvalidID, RuntimeErr

STATE_FILE = "state.json"
FIFO = "exec.fifo"


def check_id(container_id: str) -> None:
    if not ids.valid_id(container_id):
        raise InvalidID(f"invalid container id {container_id!r}: use letters, digits and _ . + -, at most {ids.MAX_ID} (no / or ..)")


@dataclass(frozen=True, slots=True)
class State:
    id: str
    pid: int
    start_time: int  # /proc/<pid>/stat starttime: tells a live init from a reused pid
    bundle: str
    rootfs: str
    created: str
    owner: str
    cgroup_kind: str
    cgroups_path: str
    cgroup_root: str = ""
    started: bool = False
    fifo: bool = False  # created by the CLI: start opens the exec fifo
    annotations: dict[str, str] = field(default_factory=dict)
    hooks: dict[str, Any] = field(default_factory=dict)  # config.json's `hooks` as create saw them


def container_dir(state_dir: str, container_id: str) -> str:
    return os.path.join(state_dir, container_id)


def save(state_dir: str, st: State) -> None:
    d = container_dir(state_dir, st.id)
    tmp = os.path.join(d, f".{STATE_FILE}.tmp")
    with open(tmp, "w") as f:
        json.dump(asdict(st), f)
    os.rename(tmp, os.path.join(d, STATE_FILE))


def load(state_dir: str, container_id: str) -> State:
    check_id(container_id)
    path = os.path.join(container_dir(state_dir, container_id), STATE_FILE)
    try:
        with open(path) as f:
            raw: dict[str, Any] = json.load(f)
    except FileNotFoundError:
        raise ContainerNotFound(f"container {container_id} does not exist")
    except (OSError, ValueError) as exc:
        raise RuntimeErr(f"container {container_id}: unreadable state {path}: {exc}")
    known = set(State.__dataclass_fields__)
    return State(**{k: v for k, v in raw.items() if k in known})


def list_ids(state_dir: str) -> list[str]:
    try:
        names = sorted(os.listdir(state_dir))
    except FileNotFoundError:
        return []
    return [n for n in names if os.path.exists(os.path.join(state_dir, n, STATE_FILE))]


def proc_start_time(pid: int) -> int:
    """starttime of /proc/<pid>/stat, or -1 if the process is gone; -2 if it is a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return -1
    rest = data[data.rindex(b")") + 2:].split()
    if rest[0] in (b"Z", b"X"):
        return -2
    return int(rest[19])
