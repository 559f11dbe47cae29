"""Image records and image-config parsing (docker's image JSON, the thing whose sha256 is the id)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ctrd import errdefs
from daemon.images import config as imgconfig
from daemon.images.blobs import chain_ids, check_digest
from daemon.images.config import ImageConfig

MAX_LAYERS = 125  # docker's limit: 125 image layers + init + rw stay under overlay's 128 lowers


@dataclass(frozen=True, slots=True)
class Image:
    id: str  # "sha256:<hex>" of the config
    repo_tags: list[str]
    config: ImageConfig
    top_layer: str | None  # cache id under overlay2/ (None for an image without layers)
    created: str  # RFC3339
    size: int
    diff_ids: list[str] = field(default_factory=list)
    architecture: str = ""
    os: str = "linux"
    comment: str = ""
    author: str = ""


@dataclass(frozen=True, slots=True)
class ParsedConfig:
    raw: dict[str, Any]
    config: ImageConfig
    diff_ids: list[str]
    chain_ids: list[str]
    created: str
    architecture: str
    os: str
    comment: str
    author: str = ""


def parse_config(data: bytes, what: str = "image config") -> ParsedConfig:
    """Validate docker/OCI image config JSON; InvalidArgument names the field."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeError):
        raise errdefs.InvalidArgument(f"{what}: not valid JSON") from None
    if not isinstance(raw, dict):
        raise errdefs.InvalidArgument(f"{what}: must be a JSON object")
    rootfs = raw.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise errdefs.InvalidArgument(f'{what}: rootfs.type must be "layers"')
    diff_ids = rootfs.get("diff_ids") or []
    if not isinstance(diff_ids, list):
        raise errdefs.InvalidArgument(f"{what}: rootfs.diff_ids must be a list")
    if len(diff_ids) > MAX_LAYERS:
        raise errdefs.InvalidArgument(f"{what}: {len(diff_ids)} layers, more than the maximum of {MAX_LAYERS}")
    diff_ids = [check_digest(d, f"{what}: rootfs.diff_ids[{i}]") for i, d in enumerate(diff_ids)]
    for key in ("created", "architecture", "os", "comment", "author"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise errdefs.InvalidArgument(f"{what}: {key} must be a string")
    return ParsedConfig(
        raw=raw,
        config=imgconfig.from_docker(raw.get("config")),
        diff_ids=diff_ids,
        chain_ids=chain_ids(diff_ids),
        created=raw.get("created") or "",
        architecture=raw.get("architecture") or "",
        os=raw.get("os") or "linux",
        comment=raw.get("comment") or "",
        author=raw.get("author") or "",
    )
