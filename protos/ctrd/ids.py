"""Container ids and names: the one check every part applies before an id reaches a path.

An id is what the runtime and the shim accept (docker's full ids are 64 hex digits, but a runtime
driven by hand, like runc, takes any name of this shape); it becomes a directory name under the
daemon's, the shim's and the runtime's state roots, so it must never hold `/` or be `..`.
Leaf module: standard library only, so that `runtime/` may import it.
"""

from __future__ import annotations

import re

MAX_ID = 128
FULL_ID = re.compile(r"^[0-9a-f]{64}$")  # the ids the daemon makes: sha256-sized hex
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")  # docker's container names (validContainerNamePattern)


def valid_id(container_id: str) -> bool:
    """True for a usable container id: letters, digits and _ . + -, at most 128, no `..`."""
    return (isinstance(container_id, str) and len(container_id) <= MAX_ID and _ID.match(container_id) is not None
            and ".." not in container_id)


def is_full_id(text: str) -> bool:
    """True for a daemon-made id (64 lower-case hex digits)."""
    return FULL_ID.match(text) is not None


def valid_name(name: str) -> bool:
    """True for a container name docker accepts (an optional leading `/`)."""
    return NAME.match(name) is not None
