"""The local driver's options and the mounts they make on a volume's `_data`.

`-o type=tmpfs -o device=tmpfs -o o=size=64m` and `-o type=none -o o=bind -o device=/path` are
mount(2) calls: the source (`device`), the filesystem type (`type`) and the options (`o`), whose
flag words become mount flags and whose other words are the filesystem's data. A volume without
options is a plain directory and is never mounted.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ctrd import libc
from ctrd.errdefs import Internal, InvalidArgument
from daemon.layers import mounts

OPTION_KEYS = ("type", "device", "o")
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC = 1, 2, 4, 8, 4096, 16384
_FLAGS = {
    "ro": MS_RDONLY, "rw": 0, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
    "bind": MS_BIND, "rbind": MS_BIND | MS_REC, "suid": 0, "dev": 0, "exec": 0,
}


@dataclass(frozen=True, slots=True)
class MountOptions:
    fstype: str
    device: str
    flags: int
    data: str


def check_options(opts: Mapping[str, str]) -> dict[str, str]:
    """docker's local driver: only type, device and o; type and device go together."""
    for key in opts:
        if key not in OPTION_KEYS:
            raise InvalidArgument(f'driver_opts: invalid option: "{key}" (the local driver takes type, device, o)')
    out = {k: v for k, v in opts.items() if v != "" or k == "o"}
    if out and ("type" not in out or "device" not in out):
        missing = "device" if "type" in out else "type"
        raise InvalidArgument(f'driver_opts: missing required option: "{missing}"')
    if out:
        parsed = mount_options(out)
        if parsed.flags & MS_BIND and not os.path.isabs(parsed.device):
            raise InvalidArgument(f"driver_opts: device: a bind volume needs an absolute host path: {parsed.device!r}")
    return out


def mount_options(opts: Mapping[str, str]) -> MountOptions:
    flags = 0
    data: list[str] = []
    for word in filter(None, opts.get("o", "").split(",")):
        if word in _FLAGS:
            flags |= _FLAGS[word]
        else:
            data.append(word)
    fstype = opts.get("type", "")
    if fstype == "none" and not flags & MS_BIND:
        raise InvalidArgument('driver_opts: type "none" needs o=bind')
    return MountOptions(fstype, opts.get("device", ""), flags, ",".join(data))


class Mounter(Protocol):
    def mount(self, opts: MountOptions, target: Path) -> None: ...
    def unmount(self, target: Path) -> None: ...
    def is_mounted(self, target: Path) -> bool: ...


class KernelMounter:
    """mount(2)/umount2(2) in the daemon's mount namespace (the host's)."""

    def mount(self, opts: MountOptions, target: Path) -> None:
        if opts.flags & MS_BIND and not os.path.isdir(opts.device):
            raise InvalidArgument(f"driver_opts: device: bind source is not a directory: {opts.device}")
        rc = libc.mount(opts.device.encode(), os.fsencode(target), opts.fstype.encode() or None,
                        opts.flags & ~MS_RDONLY if opts.flags & MS_BIND else opts.flags, opts.data.encode() or None)
        if rc != 0:
            err = ctypes.get_errno()
            raise Internal(f"mount {opts.device} on {target}: {os.strerror(err)}")
        if opts.flags & MS_BIND and opts.flags & MS_RDONLY:  # a read-only bind is a remount
            rc = libc.mount(None, os.fsencode(target), None, MS_BIND | 32 | MS_RDONLY, None)  # 32: MS_REMOUNT
            if rc != 0:
                err = ctypes.get_errno()
                self.unmount(target)
                raise Internal(f"remount {target} read-only: {os.strerror(err)}")

    def unmount(self, target: Path) -> None:
        mounts.unmount(target)

    def is_mounted(self, target: Path) -> bool:
        return mounts.is_mount_point(target)
