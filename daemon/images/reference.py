"""Image references (`name[:tag]`), validated with docker's grammar and kept in familiar form.

`docker.io/library/busybox:latest` and `busybox` both normalise to `busybox:latest`.
"""

from __future__ import annotations

import re

from ctrd import errdefs

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?"
_NAME = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_ID = re.compile(r"^(?:sha256:)?[0-9a-f]{1,64}$")
DEFAULT_TAG = "latest"
MAX_NAME = 255


def split(ref: str) -> tuple[str, str]:
    """(`name`, `tag`) in familiar form; InvalidArgument when `ref` is not a valid name[:tag]."""
    if not isinstance(ref, str) or not ref or "@" in ref:
        raise errdefs.InvalidArgument(f"invalid reference format: {str(ref)[:300]!r}")
    name, tag = ref, DEFAULT_TAG
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        name, tag = ref[:colon], ref[colon + 1 :]
    if not _TAG.match(tag) or len(name) > MAX_NAME or not _NAME.match(name):
        raise errdefs.InvalidArgument(f"invalid reference format: {ref[:300]!r}")
    first, _, rest = name.partition("/")
    looks_like_domain = bool(rest) and ("." in first or ":" in first or first == "localhost")
    if not looks_like_domain and first != first.lower():
        raise errdefs.InvalidArgument(f"invalid reference format: repository name must be lowercase: {ref!r}")
    for hub in ("docker.io/", "index.docker.io/"):
        if name.startswith(hub):
            name = name[len(hub) :]
            name = name.removeprefix("library/") if name.count("/") == 1 else name
    return name, tag


def normalize(ref: str) -> str:
    name, tag = split(ref)
    return f"{name}:{tag}"


def looks_like_id(ref: str) -> bool:
    return bool(_ID.match(ref))
