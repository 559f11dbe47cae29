"""Volume names: docker's rule for the local driver, and the names of anonymous volumes."""

from __future__ import annotations

import re
import secrets

from ctrd.errdefs import InvalidArgument

# docker's volume/local validName: at least two characters
_VALID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
# docker 23+ marks anonymous volumes so that `volume prune` (without --all) removes only those
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


def check_name(name: str, field: str = "name") -> str:
    if not _VALID.fullmatch(name):
        raise InvalidArgument(
            f'{field}: "{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'
        )
    return name


def random_name() -> str:
    """An anonymous volume's name: 64 hex digits, like docker's."""
    return secrets.token_hex(32)
