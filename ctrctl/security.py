"""--security-opt and --device, parsed as docker's CLI parses them.

`seccomp=PATH` is read here, by the client, and sent as `seccomp=<JSON>` (docker's CLI does the
same): the daemon never opens a path the user names.
"""

from __future__ import annotations

from ctrctl.errors import UsageError, flag_error
from ctrd.v1 import container_pb2

MAX_PROFILE_BYTES = 1 << 20


def parse_security_opt(value: str) -> str:
    key, sep, rest = value.partition("=")
    if not sep and ":" in value:
        key, _, rest = value.partition(":")
    if key != "seccomp" or rest in ("unconfined", "builtin", ""):
        return value
    try:
        with open(rest, "rb") as f:
            raw = f.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise flag_error("--security-opt", value, f"opening seccomp profile failed: {(exc.strerror or str(exc)).lower()}")
    if len(raw) > MAX_PROFILE_BYTES:
        raise flag_error("--security-opt", value, f"seccomp profile is larger than {MAX_PROFILE_BYTES} bytes")
    import json  # only with a profile file (ctrctl.format.quote says why)

    try:
        profile = json.loads(raw)
    except ValueError as exc:
        raise flag_error("--security-opt", value, f"seccomp profile is not valid json: {exc}")
    return "seccomp=" + json.dumps(profile, separators=(",", ":"))


def _perms(text: str) -> bool:
    return bool(text) and set(text) <= set("rwm") and len(set(text)) == len(text)


def parse_device(value: str) -> container_pb2.DeviceMapping:
    parts = value.split(":")
    src, dst, perms = parts[0], "", "rwm"
    if len(parts) == 3:
        dst, perms = parts[1], parts[2]
    elif len(parts) == 2:
        if _perms(parts[1]):
            perms = parts[1]
        else:
            dst = parts[1]
    elif len(parts) > 3:
        raise flag_error("--device", value, "use HOST[:CONTAINER[:PERMISSIONS]]")
    if not src.startswith("/"):
        raise flag_error("--device", value, "the host device must be an absolute path")
    if dst and not dst.startswith("/"):
        raise flag_error("--device", value, "the container path must be absolute")
    if not _perms(perms):
        raise UsageError(f"invalid device permissions {perms!r} in --device {value}: use a subset of rwm")
    return container_pb2.DeviceMapping(path_on_host=src, path_in_container=dst, cgroup_permissions=perms)
