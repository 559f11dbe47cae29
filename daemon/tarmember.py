"""Writing one regular tar member to an open file: its bytes and the extended attributes kept from
its pax headers. Shared by layer extraction (daemon.layers.untar) and `cp` into a container
(daemon.files.extract), which differ in how they resolve paths but not in how a file's body lands."""

from __future__ import annotations

import os
import tarfile

ALLOWED_XATTRS = ("security.capability",)
_CHUNK = 1 << 20


def write_body(tf: tarfile.TarFile, m: tarfile.TarInfo, fd: int) -> None:
    src = tf.extractfile(m)
    if src is None:
        return
    while chunk := src.read(_CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]


def set_xattrs(fd: int, m: tarfile.TarInfo) -> None:
    """The allowed xattrs of `m` (as root only: others cannot set security.*)."""
    for key, value in m.pax_headers.items():
        attr = key.removeprefix("SCHILY.xattr.")
        if attr != key and attr in ALLOWED_XATTRS:
            try:
                os.setxattr(fd, attr, value.encode("utf-8", "surrogateescape"))
            except OSError:
                pass  # a capability the filesystem cannot hold is not worth failing the copy or the image
