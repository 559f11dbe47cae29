"""Reading `docker save` archives (manifest.json) and OCI image layouts (oci-layout, index.json).

The outer archive is a seekable tar (the store spools it first). This module only finds and
checks documents — JSON size caps, digest formats, blob digests of configs and manifests — and
describes the layers; the store extracts and verifies the layers themselves.
"""

from __future__ import annotations

import json
import platform
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ctrd import errdefs
from daemon import tarcap
from daemon.images import reference
from daemon.images.blobs import Readable, check_digest, sha256_bytes

MAX_JSON = 8 << 20  # manifests and configs are small; a huge one is an attack (CVE-2023-25153)
MAX_IMAGES = 1000
OCI_INDEX = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(platform.machine(), platform.machine())
_BLOB_PATH = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
_LEGACY_CONFIG = re.compile(r"^([0-9a-f]{64})\.json$")


@dataclass(frozen=True, slots=True)
class LayerSource:
    name: str  # path inside the archive, for messages
    open: Callable[[], Readable]
    digest: str  # blob digest the archive promises ("" when the format names none)
    size: int  # blob size the archive promises (-1 when unknown)


@dataclass(frozen=True, slots=True)
class ImageSource:
    config: bytes
    layers: list[LayerSource]
    tags: list[str]  # normalised name:tag


class Archive:
    def __init__(self, tf: tarfile.TarFile) -> None:
        self.tf = tf
        self.members: dict[str, tarfile.TarInfo] = {}
        for m in tarcap.members(tf):
            self.members[_norm(m.name)] = m

    def has(self, path: str) -> bool:
        return _norm(path) in self.members

    def member(self, path: object, field: str) -> tarfile.TarInfo:
        if not isinstance(path, str) or not path:
            raise errdefs.InvalidArgument(f"invalid archive: {field} must be a path")
        m = self.members.get(_norm(path))
        if m is None:
            raise errdefs.InvalidArgument(f"invalid archive: {field} names a missing file: {path[:200]!r}")
        return m

    def open(self, m: tarfile.TarInfo) -> Readable:
        try:
            f = self.tf.extractfile(m)
        except (KeyError, tarfile.TarError) as e:
            raise errdefs.InvalidArgument(f"invalid archive: {m.name!r}: {e}") from None
        if f is None:
            raise errdefs.InvalidArgument(f"invalid archive: {m.name!r} is not a file")
        return f

    def read(self, path: object, field: str, digest: str = "") -> bytes:
        m = self.member(path, field)
        data = self.open(m).read(MAX_JSON + 1)
        if len(data) > MAX_JSON:
            raise errdefs.InvalidArgument(f"invalid archive: {m.name!r} is larger than {MAX_JSON} bytes")
        if digest and sha256_bytes(data) != digest:
            raise errdefs.InvalidArgument(f"invalid archive: {m.name!r}: content does not match digest {digest}")
        return data

    def json(self, path: object, field: str, digest: str = "") -> Any:
        data = self.read(path, field, digest)
        try:
            return json.loads(data)
        except (ValueError, UnicodeError, RecursionError):
            raise errdefs.InvalidArgument(f"invalid archive: {field} {str(path)[:200]!r} is not valid JSON") from None


def _norm(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts)


def _digest_from_path(path: str) -> str:
    m = _BLOB_PATH.match(_norm(path))
    return f"sha256:{m.group(1)}" if m else ""


def read_images(tf: tarfile.TarFile) -> list[ImageSource]:
    arc = Archive(tf)
    if arc.has("manifest.json"):
        return _docker_save(arc)
    if arc.has("index.json") and arc.has("oci-layout"):
        return _oci_layout(arc)
    raise errdefs.InvalidArgument("invalid archive: neither manifest.json (docker save) nor oci-layout/index.json (OCI)")


def _docker_save(arc: Archive) -> list[ImageSource]:
    manifest = arc.json("manifest.json", "manifest.json")
    if not isinstance(manifest, list) or len(manifest) > MAX_IMAGES:
        raise errdefs.InvalidArgument("invalid archive: manifest.json must be a list of images")
    out = []
    for i, entry in enumerate(manifest):
        if not isinstance(entry, dict):
            raise errdefs.InvalidArgument(f"invalid archive: manifest.json[{i}] must be an object")
        cfg_path = entry.get("Config")
        want = ""
        if isinstance(cfg_path, str):
            want = _digest_from_path(cfg_path)
            legacy = _LEGACY_CONFIG.match(_norm(cfg_path))
            want = want or (f"sha256:{legacy.group(1)}" if legacy else "")
        config = arc.read(cfg_path, f"manifest.json[{i}].Config", want)
        layers = entry.get("Layers")
        if not isinstance(layers, list) or not all(isinstance(p, str) for p in layers):
            raise errdefs.InvalidArgument(f"invalid archive: manifest.json[{i}].Layers must be a list of paths")
        sources = []
        for j, path in enumerate(layers):
            m = arc.member(path, f"manifest.json[{i}].Layers[{j}]")
            sources.append(LayerSource(path, _opener(arc, m), _digest_from_path(path), -1))
        tags = entry.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise errdefs.InvalidArgument(f"invalid archive: manifest.json[{i}].RepoTags must be a list of names")
        out.append(ImageSource(config, sources, [reference.normalize(t) for t in tags]))
    return out


def _opener(arc: Archive, m: tarfile.TarInfo) -> Callable[[], Readable]:
    return lambda: arc.open(m)


def _descriptor(d: object, field: str) -> tuple[str, str, int, dict[str, Any]]:
    if not isinstance(d, dict):
        raise errdefs.InvalidArgument(f"invalid archive: {field} must be a descriptor object")
    digest = check_digest(d.get("digest"), f"{field}.digest")
    size = d.get("size", -1)
    if not isinstance(size, int) or isinstance(size, bool):
        raise errdefs.InvalidArgument(f"invalid archive: {field}.size must be an integer")
    media = d.get("mediaType", "")
    annotations = d.get("annotations") or {}
    if not isinstance(media, str) or not isinstance(annotations, dict):
        raise errdefs.InvalidArgument(f"invalid archive: {field} has a bad mediaType or annotations")
    return digest, media, size, annotations


def _blob_path(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def _oci_layout(arc: Archive) -> list[ImageSource]:
    layout = arc.json("oci-layout", "oci-layout")
    if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
        raise errdefs.InvalidArgument("invalid archive: oci-layout has no imageLayoutVersion")
    index = arc.json("index.json", "index.json")
    out: list[ImageSource] = []
    _walk_index(arc, index, "index.json", "", out, depth=0)
    return out


def _walk_index(arc: Archive, index: object, field: str, name: str, out: list[ImageSource], depth: int) -> None:
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise errdefs.InvalidArgument(f"invalid archive: {field} must have a manifests list")
    if "layers" in index or "config" in index:
        raise errdefs.InvalidArgument(f"invalid archive: {field} is ambiguous (index and manifest)")  # CVE-2021-41190
    if depth > 4 or len(index["manifests"]) > MAX_IMAGES:
        raise errdefs.InvalidArgument(f"invalid archive: {field} is nested too deep or too large")
    for i, d in enumerate(index["manifests"]):
        f = f"{field}.manifests[{i}]"
        digest, media, _size, ann = _descriptor(d, f)
        ref = _ref_name(ann) or name
        plat = d.get("platform") if isinstance(d, dict) else None
        if isinstance(plat, dict) and (
            plat.get("os", "linux") != "linux" or plat.get("architecture", HOST_ARCH) != HOST_ARCH
        ):
            continue
        doc = arc.json(_blob_path(digest), f, digest)
        if media in OCI_INDEX or (not media and isinstance(doc, dict) and "manifests" in doc):
            _walk_index(arc, doc, _blob_path(digest), ref, out, depth + 1)
        else:
            out.append(_manifest(arc, doc, _blob_path(digest), ref))


def _ref_name(ann: dict[str, Any]) -> str:
    for key in ("io.containerd.image.name", "org.opencontainers.image.ref.name"):
        value = ann.get(key)
        # A bare tag ("latest") names no repository: docker ignores it, and so do we.
        if isinstance(value, str) and (":" in value or "/" in value):
            return reference.normalize(value)
    return ""


def _manifest(arc: Archive, doc: object, field: str, name: str) -> ImageSource:
    if not isinstance(doc, dict) or "manifests" in doc:
        raise errdefs.InvalidArgument(f"invalid archive: {field} must be an image manifest")
    cfg_digest, _m, _s, _a = _descriptor(doc.get("config"), f"{field}.config")
    config = arc.read(_blob_path(cfg_digest), f"{field}.config", cfg_digest)
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise errdefs.InvalidArgument(f"invalid archive: {field}.layers must be a list")
    sources = []
    for j, d in enumerate(layers):
        digest, _media, size, _ann = _descriptor(d, f"{field}.layers[{j}]")
        m = arc.member(_blob_path(digest), f"{field}.layers[{j}]")
        sources.append(LayerSource(_blob_path(digest), _opener(arc, m), digest, size))
    return ImageSource(config, sources, [name] if name else [])
