"""`linux.uidMappings` / `linux.gidMappings`: the id maps of a new user namespace."""

from __future__ import annotations

from runtime.errors import SpecError
from runtime.value import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_MAX_ID = (1 << 32) - 1
_MAX_EXTENTS = 340  # the kernel's limit per map (since 4.15)


class IdMap(Value):
    container_id: int
    host_id: int
    size: int


def id_maps(v: Any, where: str) -> tuple[IdMap, ...]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise SpecError(where, "must be a list of {containerID, hostID, size}")
    if len(v) > _MAX_EXTENTS:
        raise SpecError(where, f"has {len(v)} entries; the kernel takes at most {_MAX_EXTENTS}")
    out: list[IdMap] = []
    for i, m in enumerate(v):
        if not isinstance(m, dict):
            raise SpecError(f"{where}[{i}]", "must be an object")
        vals: list[int] = []
        for key in ("containerID", "hostID", "size"):
            x = m.get(key)
            if not isinstance(x, int) or isinstance(x, bool) or x < 0 or x > _MAX_ID:
                raise SpecError(f"{where}[{i}].{key}", f"{x!r} is not an id between 0 and {_MAX_ID}")
            vals.append(x)
        if vals[2] == 0:
            raise SpecError(f"{where}[{i}].size", "must be at least 1")
        if vals[0] + vals[2] - 1 > _MAX_ID or vals[1] + vals[2] - 1 > _MAX_ID:
            raise SpecError(f"{where}[{i}]", "the range runs past the largest id")
        out.append(IdMap(*vals))
    for i, a in enumerate(out):
        for b in out[i + 1:]:
            if a.container_id < b.container_id + b.size and b.container_id < a.container_id + a.size:
                raise SpecError(where, f"container ids {a.container_id} and {b.container_id} overlap")
    return tuple(out)


def map_text(maps: tuple[IdMap, ...]) -> bytes:
    """The contents written to /proc/<pid>/uid_map or gid_map."""
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps).encode()


def to_host(maps: tuple[IdMap, ...], cid: int) -> int | None:
    """The host id of container id `cid`, or None when it is not mapped."""
    for m in maps:
        if m.container_id <= cid < m.container_id + m.size:
            return m.host_id + cid - m.container_id
    return None


def check(has_new_userns: bool, has_userns_path: bool, uid: tuple[IdMap, ...], gid: tuple[IdMap, ...]) -> None:
    """runc's rules: a new user namespace needs both maps; maps without one are an error."""
    if has_new_userns:
        if not uid or not gid:
            missing = "linux.uidMappings" if not uid else "linux.gidMappings"
            raise SpecError(missing, "a new user namespace needs uid and gid mappings")
    elif uid or gid:
        field = "linux.uidMappings" if uid else "linux.gidMappings"
        why = "are given with a user namespace path (the namespace has its maps)" if has_userns_path \
            else "need a user namespace in linux.namespaces"
        raise SpecError(field, why)
