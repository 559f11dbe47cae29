"""Manifests as registries serve them: Docker schema 2, OCI, manifest lists and OCI indexes.

Only the fields a pull needs are checked (config and layer descriptors, platforms); a document that
is both an index and a manifest is refused (CVE-2021-41190), as are foreign/non-distributable
layers (they live outside the registry: docker's Windows base layers), schema 1 manifests
(deprecated, unsigned content) and artifacts whose config is not an image config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ctrd import errdefs
from daemon.images.blobs import check_digest

MAX_MANIFEST = 4 << 20  # distribution's own limit for a manifest PUT; a larger GET is hostile

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json", "application/vnd.docker.distribution.manifest.v1+prettyjws")
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
# media type → compression ("" = none)
LAYER_TYPES = {
    DOCKER_LAYER: "gzip",
    OCI_LAYER: "",
    OCI_LAYER + "+gzip": "gzip",
    OCI_LAYER + "+zstd": "zstd",
}
FOREIGN = ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "application/vnd.oci.image.layer.nondistributable.v1.tar")


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: list[Descriptor]


def descriptor(d: object, field: str) -> Descriptor:
    if not isinstance(d, dict):
        raise errdefs.InvalidArgument(f"invalid manifest: {field} must be a descriptor object")
    digest = check_digest(d.get("digest"), f"manifest {field}")
    size = d.get("size")
    media = d.get("mediaType", "")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise errdefs.InvalidArgument(f"invalid manifest: {field}.size must be a non-negative integer")
    if not isinstance(media, str):
        raise errdefs.InvalidArgument(f"invalid manifest: {field}.mediaType must be a string")
    return Descriptor(media, digest, size)


def load(data: bytes, content_type: str, what: str) -> tuple[str, dict[str, Any]]:
    """(media type, document) of a fetched manifest; the body's mediaType wins over the header."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeError):
        raise errdefs.InvalidArgument(f"{what}: manifest is not valid JSON") from None
    if not isinstance(doc, dict):
        raise errdefs.InvalidArgument(f"{what}: manifest must be a JSON object")
    media = doc.get("mediaType") or content_type.split(";")[0].strip()
    if media in SCHEMA1 or doc.get("schemaVersion") == 1:
        raise errdefs.InvalidArgument(f"{what}: schema 1 manifests are not supported (push the image again with a newer client)")
    if "manifests" in doc and ("layers" in doc or "config" in doc):
        raise errdefs.InvalidArgument(f"{what}: manifest is ambiguous (both an index and an image manifest)")
    if media not in INDEXES and media not in MANIFESTS:
        # OCI allows an absent mediaType: tell the two kinds apart by their fields
        media = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "layers" in doc else media
    if media not in INDEXES and media not in MANIFESTS:
        raise errdefs.InvalidArgument(f"{what}: unsupported manifest media type {str(media)[:100]!r}")
    return media, doc


def image_manifest(media: str, doc: dict[str, Any], what: str) -> Manifest:
    config = descriptor(doc.get("config"), "config")
    if config.media_type not in (DOCKER_CONFIG, OCI_CONFIG, ""):
        raise errdefs.InvalidArgument(f"{what}: not a container image (config media type {config.media_type[:100]!r})")
    raw = doc.get("layers")
    if not isinstance(raw, list):
        raise errdefs.InvalidArgument(f"{what}: manifest layers must be a list")
    layers = []
    for i, d in enumerate(raw):
        desc = descriptor(d, f"layers[{i}]")
        if desc.media_type.startswith(FOREIGN) or (isinstance(d, dict) and d.get("urls")):
            raise errdefs.InvalidArgument(
                f"{what}: layer {desc.digest} is a foreign (non-distributable) layer, which ctrd does not fetch"
            )
        if desc.media_type not in LAYER_TYPES:
            raise errdefs.InvalidArgument(f"{what}: layer {desc.digest} has unsupported media type {desc.media_type[:100]!r}")
        layers.append(desc)
    return Manifest(media, config, layers)
