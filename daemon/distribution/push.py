"""`push`: upload an image's blobs and manifest to a registry.

Layers are pushed as the compressed blobs they were pulled as (docker's v2metadata tells which
blob unpacks to a diff id); the manifest is rebuilt from the config and those blobs, so the
digest matches what the source registry served for a single-platform image. Per layer: a HEAD
finds blobs the registry has ("Layer already exists"); a blob this registry holds in another
repository is mounted (`?mount=&from=`, no bytes sent); anything else is uploaded monolithically
(POST, then PUT with the body streamed from the content store).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctrd import errdefs
from daemon.distribution import manifest as mf
from daemon.distribution import names
from daemon.distribution.client import Registry, RetryableStatus, error_message, retrying
from daemon.distribution.content import CHUNK, ContentStore
from daemon.distribution.metadata import Metadata
from daemon.distribution.progress import Emit, Event, Throttle, short
from daemon.images.blobs import sha256_bytes
from daemon.images.records import parse_config
from daemon.images.store import ImageStore


@dataclass(frozen=True, slots=True)
class Blob:
    media_type: str
    digest: str
    size: int
    path: Path
    source_repo: str  # "domain/path" it was pulled from ("" when unknown)


def layer_media_type(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"\x1f\x8b"):
        return mf.DOCKER_LAYER
    if head == b"\x28\xb5\x2f\xfd":
        return mf.OCI_LAYER + "+zstd"
    return mf.OCI_LAYER


def plan(images: ImageStore, content: ContentStore, meta: Metadata, image_ref: str) -> tuple[bytes, list[Blob]]:
    """(config bytes, layer blobs) of a local image; FailedPrecondition for a layer without a blob."""
    image = images.get(image_ref)
    config = (images.content / image.id.removeprefix("sha256:")).read_bytes()
    parsed = parse_config(config)
    blobs = []
    for diff_id in parsed.diff_ids:
        for entry in meta.sources(diff_id):
            digest = entry["Digest"]
            if content.has(digest):
                p = content.path(digest)
                blobs.append(Blob(layer_media_type(p), digest, p.stat().st_size, p, str(entry.get("SourceRepository") or "")))
                break
        else:
            raise errdefs.FailedPrecondition(
                f"push {image_ref}: layer {diff_id} has no blob in the content store "
                "(it was stored before ctrd kept blobs: pull or load the image again)"
            )
    return config, blobs


async def _file_body(path: Path, on_bytes: Throttle, total: int, start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes [start, end) of a blob, read off the event loop, reporting progress over `total`."""
    done = start
    with open(path, "rb") as f:
        f.seek(start)
        while done < end and (chunk := await asyncio.to_thread(f.read, min(CHUNK, end - done))):
            done += len(chunk)
            on_bytes(done, total)
            yield chunk


def _range_end(value: str) -> int:
    """`0-1023` (the registry's Range header on uploads) → 1023; -1 when absent or odd."""
    try:
        return int(value.rpartition("-")[2]) if "-" in value else -1
    except ValueError:
        return -1


def oci_type(media: str) -> str:
    return mf.OCI_LAYER + "+gzip" if media == mf.DOCKER_LAYER else media


class Pusher:
    def __init__(self, images: ImageStore, content: ContentStore, meta: Metadata) -> None:
        self.images, self.content, self.meta = images, content, meta

    async def _exists(self, reg: Registry, repo: str, digest: str) -> bool:
        async def attempt(n: int) -> bool:
            async with reg.request("HEAD", f"/v2/{repo}/blobs/{digest}", f"repository:{repo}:pull,push") as resp:
                if resp.status >= 500:
                    raise RetryableStatus(resp.status, f"blob {digest}")
                return resp.status == 200

        return await retrying(f"blob {digest}", reg.opts, attempt)

    async def _upload(self, reg: Registry, ref: names.RemoteRef, blob: Blob, ident: str, emit: Emit) -> str:
        repo = ref.path
        scope = f"repository:{repo}:pull,push"
        src_domain, _, src_path = blob.source_repo.partition("/")
        mount = src_domain == ref.domain and src_path and src_path != repo
        query = f"?mount={blob.digest}&from={src_path}" if mount else ""
        async with reg.request("POST", f"/v2/{repo}/blobs/uploads/{query}", scope, data=b"") as resp:
            if resp.status == 201:
                return f"Mounted from {src_path}"
            if resp.status != 202:
                raise errdefs.Unavailable(f"push {ref.familiar}: starting upload of {blob.digest}: {await error_message(resp)}")
            location = resp.headers.get("Location", "")
        if not location:
            raise errdefs.Unavailable(f"push {ref.familiar}: registry gave no upload location")
        progress = Throttle(emit, ident, "Pushing")
        if blob.size > reg.opts.upload_chunk:
            location = await self._chunks(reg, ref, blob, reg.url(location), progress)
            body: Any = b""
            headers = {"Content-Length": "0"}
        else:
            body = _file_body(blob.path, progress, blob.size, 0, blob.size)
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)}
        url = reg.url(location)
        url += ("&" if "?" in url else "?") + f"digest={blob.digest}"
        async with reg.request("PUT", url, scope, headers=headers, data=body) as resp:
            if resp.status != 201:
                raise errdefs.Unavailable(f"push {ref.familiar}: uploading {blob.digest}: {await error_message(resp)}")
        return "Pushed"

    async def _chunks(self, reg: Registry, ref: names.RemoteRef, blob: Blob, location: str, progress: Throttle) -> str:
        """Chunked upload (PATCH with Content-Range); a failed chunk resumes from the offset the
        registry reports (GET on the upload answers `Range: 0-<last>`). Returns the final location."""
        scope = f"repository:{ref.path}:pull,push"
        what = f"push {ref.familiar}: uploading {blob.digest}"
        offset = 0

        async def attempt(n: int) -> None:
            nonlocal offset, location
            if n:  # after a failure: ask where the registry is
                async with reg.request("GET", location, scope) as resp:
                    if resp.status != 204:
                        raise errdefs.Unavailable(f"{what}: upload status: {await error_message(resp)}")
                    offset = _range_end(resp.headers.get("Range", "")) + 1
                    location = reg.url(resp.headers.get("Location", location))
            while offset < blob.size:
                end = min(offset + reg.opts.upload_chunk, blob.size)
                headers = {"Content-Type": "application/octet-stream", "Content-Length": str(end - offset),
                           "Content-Range": f"{offset}-{end - 1}"}
                body = _file_body(blob.path, progress, blob.size, offset, end)
                async with reg.request("PATCH", location, scope, headers=headers, data=body) as resp:
                    if resp.status >= 500:
                        raise RetryableStatus(resp.status, what)
                    if resp.status != 202:
                        raise errdefs.Unavailable(f"{what}: {await error_message(resp)}")
                    location = reg.url(resp.headers.get("Location", location))
                    offset = _range_end(resp.headers.get("Range", "")) + 1 or end

        await retrying(what, reg.opts, attempt)
        return location

    async def push(self, reg: Registry, ref: names.RemoteRef, local: str, emit: Emit) -> str:
        config, layers = await asyncio.to_thread(plan, self.images, self.content, self.meta, local)
        emit(Event("", f"The push refers to repository [{ref.domain}/{ref.path}]"))
        cfg_digest = sha256_bytes(config)
        if not self.content.has(cfg_digest):
            await asyncio.to_thread(self.content.write, config, cfg_digest)
        cfg_blob = Blob(mf.DOCKER_CONFIG, cfg_digest, len(config), self.content.path(cfg_digest), "")

        async def one(blob: Blob, out: Emit = emit) -> None:
            ident = short(blob.digest)
            out(Event(ident, "Preparing"))
            if await self._exists(reg, ref.path, blob.digest):
                out(Event(ident, "Layer already exists"))
                return
            out(Event(ident, await self._upload(reg, ref, blob, ident, out)))

        # the same cap as downloads: three uploads at once (docker's max-concurrent-uploads is 5)
        slots = asyncio.Semaphore(3)

        async def capped(blob: Blob) -> None:
            async with slots:
                await one(blob)

        await asyncio.gather(*(capped(b) for b in layers))
        await one(cfg_blob, lambda e: None)  # docker shows layers only
        # Docker's schema 2 when every layer is gzip (what docker pushes); else OCI, whose media
        # types also name zstd and uncompressed layers (from `image load` of a docker-save tar)
        oci = any(b.media_type != mf.DOCKER_LAYER for b in layers)
        media = mf.OCI_MANIFEST if oci else mf.DOCKER_MANIFEST
        doc = {
            "schemaVersion": 2,
            "mediaType": media,
            "config": {"mediaType": mf.OCI_CONFIG if oci else mf.DOCKER_CONFIG, "size": len(config), "digest": cfg_digest},
            "layers": [{"mediaType": oci_type(b.media_type) if oci else b.media_type, "size": b.size, "digest": b.digest}
                       for b in layers],
        }
        body = json.dumps(doc, indent=3).encode()
        digest = sha256_bytes(body)
        tag = ref.tag or "latest"
        scope = f"repository:{ref.path}:pull,push"
        async with reg.request("PUT", f"/v2/{ref.path}/manifests/{tag}", scope,
                               headers={"Content-Type": media}, data=body) as resp:
            if resp.status != 201:
                raise errdefs.Unavailable(f"push {ref.familiar}:{tag}: manifest: {await error_message(resp)}")
        diff_ids = parse_config(config).diff_ids
        for b, diff_id in zip(layers, diff_ids, strict=True):
            await asyncio.to_thread(self.meta.add_layer, b.digest, diff_id, f"{ref.domain}/{ref.path}")
        image = await asyncio.to_thread(self.images.get, local)
        await asyncio.to_thread(self.meta.add_repo_digest, ref.familiar, digest, image.id)
        emit(Event("", f"{tag}: digest: {digest} size: {len(body)}"))
        return digest
