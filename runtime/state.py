"""A container's persisted record: <state_dir>/<id>/state.json (written atomically), plus the
exec fifo of a CLI-created container that has not been started yet."""

from __future__ import annotations

import os

from ctrd import ids
from runtime import fastjson
from runtime.errors import ContainerNotFound, InvalidID, RuntimeErr
from runtime.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

STATE_FILE = "state.json"
FIFO = "exec.fifo"
SETUP_TIMEOUT = 60.0  # how long a parent waits for a forked child (or a CLI start for the fifo) to report its setup


def check_id(container_id: str) -> None:
    if not ids.valid_id(container_id):
        raise InvalidID(f"invalid container id {container_id!r}: use letters, digits and _ . + -, at most {ids.MAX_ID} (no / or ..)")


class State(Record):
    """(runtime.record says why this is not a dataclass)"""

    __slots__ = (
        "annotations",
        "bundle",
        "cgroup_kind",
        "cgroup_root",
        "cgroups_path",
        "created",
        "fifo",
        "hooks",
        "id",
        "owner",
        "pid",
        "rootfs",
        "start_time",
        "started",
    )
    id: str
    pid: int
    start_time: int  # /proc/<pid>/stat starttime: tells a live init from a reused pid
    bundle: str
    rootfs: str
    created: str
    owner: str
    cgroup_kind: str
    cgroups_path: str
    cgroup_root: str
    started: bool
    fifo: bool  # created by the CLI: start opens the exec fifo
    annotations: dict[str, str]
    hooks: dict[str, Any]  # config.json's `hooks` as create saw them

    def __init__(self, id: str, pid: int, start_time: int, bundle: str, rootfs: str, created: str, owner: str,
                 cgroup_kind: str, cgroups_path: str, cgroup_root: str = "", started: bool = False,
                 fifo: bool = False, annotations: dict[str, str] | None = None,
                 hooks: dict[str, Any] | None = None) -> None:
        self._set(id=id, pid=pid, start_time=start_time, bundle=bundle, rootfs=rootfs, created=created, owner=owner,
                  cgroup_kind=cgroup_kind, cgroups_path=cgroups_path, cgroup_root=cgroup_root, started=started,
                  fifo=fifo, annotations={} if annotations is None else annotations,
                  hooks={} if hooks is None else hooks)


def container_dir(state_dir: str, container_id: str) -> str:
    return os.path.join(state_dir, container_id)


def save(state_dir: str, st: State) -> None:
    d = container_dir(state_dir, st.id)
    tmp = os.path.join(d, f".{STATE_FILE}.tmp")
    with open(tmp, "w") as f:
        f.write(fastjson.dumps(st.as_dict()))
    os.rename(tmp, os.path.join(d, STATE_FILE))


def load(state_dir: str, container_id: str) -> State:
    check_id(container_id)
    path = os.path.join(container_dir(state_dir, container_id), STATE_FILE)
    try:
        with open(path) as f:
            raw: dict[str, Any] = fastjson.loads(f.read())
    except FileNotFoundError:
        raise ContainerNotFound(f"container {container_id} does not exist")
    except (OSError, ValueError) as exc:
        raise RuntimeErr(f"container {container_id}: unreadable state {path}: {exc}")
    known = set(State.__slots__)
    return State(**{k: v for k, v in raw.items() if k in known})


def remove(state_dir: str, container_id: str) -> None:
    """Remove the container's state directory and whatever is in it; no error when it is gone.
    shutil.rmtree would do, but `shutil` brings fnmatch and `re`, ~5 ms of a `ctrd-runtime
    delete` here (runtime/cli.py has the measurement); the directory holds a few plain files."""
    top = container_dir(state_dir, container_id)
    for where, dirs, files in os.walk(top, topdown=False):
        for name in files:
            _quietly(os.unlink, os.path.join(where, name))
        for name in dirs:
            path = os.path.join(where, name)
            _quietly(os.unlink if os.path.islink(path) else os.rmdir, path)
    _quietly(os.rmdir, top)


def _quietly(op: Callable[[str], None], path: str) -> None:
    try:
        op(path)
    except OSError:
        pass


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
