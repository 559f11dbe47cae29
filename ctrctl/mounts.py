"""Client-side parsing of -v, --mount and --tmpfs into the proto's Mount fields (docker's syntax).

-v SRC:DST[:OPTS] is a bind when SRC is an absolute path and a named volume otherwise (the daemon
checks the name); -v /DST alone is an anonymous volume. `origin` tells inspect which of docker's
HostConfig fields (Binds, Mounts, Tmpfs) the mount came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from ctrctl.errors import flag_error
from ctrctl.flags import ram_in_bytes

_PROPAGATION = ("rprivate", "private", "rslave", "slave", "rshared", "shared")
_BIND_MODES = ("ro", "rw", "z", "Z", *_PROPAGATION)
_VOLUME_MODES = ("ro", "rw", "z", "Z", "nocopy")


class MountSpec(NamedTuple):  # not a dataclass: start-up time (ctrctl/parser.py's _Subs)
    type: str
    source: str
    target: str
    read_only: bool
    options: str
    origin: str = ""
    no_copy: bool = False
    propagation: str = ""
    volume_driver: str = ""
    volume_options: Mapping[str, str] = MappingProxyType({})


def parse_volume(raw: str) -> MountSpec:
    """-v SRC:DST[:OPTS] (bind or named volume) or -v DST (anonymous volume)."""
    flag = "-v, --volume"
    parts = raw.split(":")
    if len(parts) == 1:
        if not raw.startswith("/"):
            raise flag_error(flag, raw, f"invalid mount path: '{raw}' mount path must be absolute")
        return MountSpec("volume", "", raw, False, "", origin="binds")
    mode = ""
    if len(parts) == 3:
        mode = parts.pop()
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise flag_error(flag, raw, "expected SRC:DST[:OPTS] or DST")
    src, dst = parts
    if not dst.startswith("/"):
        raise flag_error(flag, raw, f"invalid mount path: '{dst}' mount path must be absolute")
    opts = [o for o in mode.split(",") if o]
    bind = src.startswith("/")
    for opt in opts:
        if opt not in (_BIND_MODES if bind else _VOLUME_MODES):
            raise flag_error(flag, raw, f"invalid mode: {opt}")
    if sum(o in ("ro", "rw") for o in opts) > 1:
        raise flag_error(flag, raw, f"invalid mode: {mode}")
    if bind:
        prop = next((o for o in opts if o in _PROPAGATION), "")
        return MountSpec("bind", src, dst, "ro" in opts, "", origin="binds", propagation=prop)
    return MountSpec("volume", src, dst, "ro" in opts, "", origin="binds", no_copy="nocopy" in opts)


def _truthy(value: str, flag: str, raw: str) -> bool:
    if value.lower() in ("", "1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise flag_error(flag, raw, f"invalid boolean value: {value}")


def parse_mount(raw: str) -> MountSpec:
    """--mount type=bind|volume|tmpfs,source=..,target=..[,readonly][,volume-nocopy][,volume-opt=k=v]
    [,tmpfs-size=..][,tmpfs-mode=..][,bind-propagation=..]."""
    flag = "--mount"
    kind, src, dst, ro, nocopy, prop, driver = "bind", "", "", False, False, "", ""
    opts: list[str] = []
    vopts: dict[str, str] = {}
    used: set[str] = set()
    for fld in raw.split(","):
        key, eq, value = fld.partition("=")
        key = key.strip().lower()
        if key == "type":
            kind = value
        elif key in ("source", "src"):
            src = value
        elif key in ("target", "destination", "dst"):
            dst = value
        elif key in ("readonly", "ro"):
            ro = _truthy(value if eq else "", flag, raw)
        elif key == "volume-nocopy":
            nocopy = _truthy(value if eq else "", flag, raw)
            used.add(key)
        elif key == "volume-opt":
            k, sep, v = value.partition("=")
            if not sep or not k:
                raise flag_error(flag, raw, f"invalid volume-opt '{value}': want key=value")
            vopts[k] = v
            used.add(key)
        elif key == "volume-driver":
            driver = value
            used.add(key)
        elif key == "tmpfs-size":
            try:
                opts.append(f"size={ram_in_bytes(value)}")
            except ValueError as exc:
                raise flag_error(flag, raw, str(exc))
            used.add(key)
        elif key == "tmpfs-mode":
            try:
                opts.append(f"mode={int(value, 8):o}")
            except ValueError:
                raise flag_error(flag, raw, f"invalid tmpfs-mode: {value}")
            used.add(key)
        elif key == "bind-propagation":
            if value not in _PROPAGATION:
                raise flag_error(flag, raw, f"invalid bind-propagation: {value}")
            prop = value
            used.add(key)
        elif key == "consistency":
            continue
        else:
            raise flag_error(flag, raw, f"unexpected key '{key}' in '{fld}'")
    if kind not in ("bind", "tmpfs", "volume"):
        raise flag_error(flag, raw, f"invalid mount type: '{kind}' (bind, volume or tmpfs)")
    for key in sorted(used):
        if not key.startswith({"bind": "bind-", "volume": "volume-", "tmpfs": "tmpfs-"}[kind]):
            raise flag_error(flag, raw, f"cannot mix '{key}' with type={kind}")
    if not dst.startswith("/"):
        raise flag_error(flag, raw, "target is required and must be an absolute path")
    if kind == "bind":
        if not src.startswith("/"):
            raise flag_error(flag, raw, "bind source is required and must be an absolute path")
        return MountSpec("bind", src, dst, ro, "", origin="mounts", propagation=prop)
    if kind == "volume":
        if src.startswith("/"):
            raise flag_error(flag, raw, "a volume's source is a volume name, not a path (use type=bind)")
        return MountSpec("volume", src, dst, ro, "", origin="mounts", no_copy=nocopy, volume_driver=driver,
                         volume_options=vopts)
    if src:
        raise flag_error(flag, raw, "source is not allowed with type=tmpfs")
    return MountSpec(kind, src, dst, ro, ",".join(opts), origin="mounts")


def parse_tmpfs(raw: str) -> MountSpec:
    """--tmpfs /path[:opts] (opts passed to mount: "rw,noexec,size=64m")."""
    target, _, options = raw.partition(":")
    if not target.startswith("/"):
        raise flag_error("--tmpfs", raw, f"invalid mount path: '{target}' mount path must be absolute")
    ro = "ro" in options.split(",")
    return MountSpec("tmpfs", "", target, ro, options, origin="tmpfs")


def parse_volumes_from(raw: str) -> str:
    name, _, mode = raw.partition(":")
    if not name or mode not in ("", "ro", "rw"):
        raise flag_error("--volumes-from", raw, "expected CONTAINER[:ro|rw]")
    return raw
