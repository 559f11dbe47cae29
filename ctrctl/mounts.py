"""Client-side parsing of -v, --mount and --tmpfs into the proto's Mount fields (docker's syntax).

Only bind mounts and tmpfs exist (no named volumes): a relative -v source is refused here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctrctl.errors import flag_error
from ctrctl.flags import ram_in_bytes

_BIND_MODES = ("ro", "rw", "z", "Z", "rprivate", "private", "rslave", "slave", "rshared", "shared")


@dataclass(frozen=True, slots=True)
class MountSpec:
    type: str
    source: str
    target: str
    read_only: bool
    options: str


def parse_volume(raw: str) -> MountSpec:
    """-v SRC:DST[:ro|rw]: bind mounts only (there are no named volumes)."""
    flag = "-v, --volume"
    parts = raw.split(":")
    mode = ""
    if len(parts) == 3:
        mode = parts.pop()
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise flag_error(flag, raw, "expected SRC:DST[:ro] (only bind mounts are supported)")
    src, dst = parts
    if not src.startswith("/"):
        raise flag_error(flag, raw, f"bind source must be an absolute host path: {src}")
    if not dst.startswith("/"):
        raise flag_error(flag, raw, f"invalid mount path: '{dst}' mount path must be absolute")
    opts = [o for o in mode.split(",") if o]
    for opt in opts:
        if opt not in _BIND_MODES:
            raise flag_error(flag, raw, f"invalid mode: {opt}")
    return MountSpec("bind", src, dst, "ro" in opts, "")


def _truthy(value: str, flag: str, raw: str) -> bool:
    if value.lower() in ("", "1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise flag_error(flag, raw, f"invalid boolean value: {value}")


def parse_mount(raw: str) -> MountSpec:
    """--mount type=bind|tmpfs,source=..,target=..[,readonly][,tmpfs-size=..][,tmpfs-mode=..]."""
    flag = "--mount"
    kind, src, dst, ro = "", "", "", False
    opts: list[str] = []
    for field in raw.split(","):
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if key == "type":
            kind = value
        elif key in ("source", "src"):
            src = value
        elif key in ("target", "destination", "dst"):
            dst = value
        elif key in ("readonly", "ro"):
            ro = _truthy(value if eq else "", flag, raw)
        elif key == "tmpfs-size":
            try:
                opts.append(f"size={ram_in_bytes(value)}")
            except ValueError as exc:
                raise flag_error(flag, raw, str(exc))
        elif key == "tmpfs-mode":
            try:
                opts.append(f"mode={int(value, 8):o}")
            except ValueError:
                raise flag_error(flag, raw, f"invalid tmpfs-mode: {value}")
        elif key in ("bind-propagation", "consistency"):
            continue
        else:
            raise flag_error(flag, raw, f"unexpected key '{key}' in '{field}'")
    if kind not in ("bind", "tmpfs"):
        raise flag_error(flag, raw, f"invalid mount type: '{kind}' (bind or tmpfs)")
    if not dst.startswith("/"):
        raise flag_error(flag, raw, "target is required and must be an absolute path")
    if kind == "bind":
        if not src.startswith("/"):
            raise flag_error(flag, raw, "bind source is required and must be an absolute path")
        if opts:
            raise flag_error(flag, raw, "tmpfs options are only valid with type=tmpfs")
    elif src:
        raise flag_error(flag, raw, "source is not allowed with type=tmpfs")
    return MountSpec(kind, src, dst, ro, ",".join(opts))


def parse_tmpfs(raw: str) -> MountSpec:
    """--tmpfs /path[:opts] (opts passed to mount: "rw,noexec,size=64m")."""
    target, _, options = raw.partition(":")
    if not target.startswith("/"):
        raise flag_error("--tmpfs", raw, f"invalid mount path: '{target}' mount path must be absolute")
    ro = "ro" in options.split(",")
    return MountSpec("tmpfs", "", target, ro, options)
