"""`pull`: resolve a reference to one image manifest, fetch its blobs, register it like `load` does.

The registered image is the same as docker's for the same content: its id is the sha256 of the
config blob, its layers go through the image store's ingest (diff ids and chain ids checked), and
the manifest digest is recorded as a RepoDigest. Layers whose chain is already stored are not
downloaded ("Already exists"), blobs in the content store are not downloaded again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctrd import errdefs
from daemon.distribution import manifest as mf
from daemon.distribution import names, platforms
from daemon.distribution.client import Registry, RetryableStatus, error_message, read_capped, retrying
from daemon.distribution.content import Fetcher
from daemon.distribution.manifest import Descriptor
from daemon.distribution.metadata import Metadata
from daemon.distribution.progress import Emit, Event, Throttle, short
from daemon.images.archive import MAX_JSON, LayerSource
from daemon.images.blobs import Readable, chain_ids
from daemon.images.records import parse_config
from daemon.images.store import ImageStore


@dataclass(frozen=True, slots=True)
class PullResult:
    image_id: str
    digest: str  # of the manifest (or index) the reference named
    reference: str  # name:tag or name@digest


async def fetch_manifest(reg: Registry, repo: str, obj: str, what: str) -> tuple[bytes, str, str]:
    """(body, content type, digest) of /v2/<repo>/manifests/<obj>; a digest reference is verified."""

    async def attempt(n: int) -> tuple[bytes, str]:
        async with reg.request("GET", f"/v2/{repo}/manifests/{obj}", f"repository:{repo}:pull",
                               headers={"Accept": mf.ACCEPT}) as resp:
            if resp.status >= 500 or resp.status == 429:
                raise RetryableStatus(resp.status, what)
            if resp.status == 404:
                raise errdefs.NotFound(f"{what}: {await error_message(resp)}")
            if resp.status != 200:
                raise errdefs.Unavailable(f"{what}: {await error_message(resp)}")
            length = resp.content_length
            if length is not None and length > mf.MAX_MANIFEST:
                raise errdefs.InvalidArgument(f"{what}: manifest of {length} bytes is over the {mf.MAX_MANIFEST} byte limit")
            body = await read_capped(resp, mf.MAX_MANIFEST)
            if len(body) > mf.MAX_MANIFEST:
                raise errdefs.InvalidArgument(f"{what}: manifest is over the {mf.MAX_MANIFEST} byte limit")
            return body, resp.headers.get("Content-Type", "")

    body, ctype = await retrying(what, reg.opts, attempt)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if obj.startswith("sha256:") and digest != obj:
        raise errdefs.Internal(f"{what}: digest mismatch: manifest content is {digest}", reason="digest-mismatch")
    return body, ctype, digest


async def resolve(reg: Registry, ref: names.RemoteRef, want: platforms.Platform) -> tuple[mf.Manifest, bytes, str]:
    """(image manifest, its bytes, digest of what the reference names — an index's own digest)."""
    what = f"{ref.familiar}:{ref.tag}" if ref.tag and not ref.digest else ref.canonical
    body, ctype, digest = await fetch_manifest(reg, ref.path, ref.object, what)
    media, doc = mf.load(body, ctype, what)
    named = digest
    if media in mf.INDEXES:
        manifests = doc.get("manifests")
        if not isinstance(manifests, list):
            raise errdefs.InvalidArgument(f"{what}: index manifests must be a list")
        chosen = mf.descriptor(platforms.select(manifests, want, what), "manifests[]")
        body, ctype, _ = await fetch_manifest(reg, ref.path, chosen.digest, what)
        media, doc = mf.load(body, chosen.media_type or ctype, what)
        if media in mf.INDEXES:
            raise errdefs.InvalidArgument(f"{what}: nested indexes are not supported")
    return mf.image_manifest(media, doc, what), body, named


class Puller:
    def __init__(self, images: ImageStore, fetcher: Fetcher, meta: Metadata) -> None:
        self.images = images
        self.fetcher = fetcher
        self.meta = meta

    async def pull(self, reg: Registry, ref: names.RemoteRef, want: platforms.Platform, emit: Emit,
                   explicit: bool = False) -> PullResult:
        """`explicit`: the platform was asked for, so a single-platform image must match it."""
        loop = asyncio.get_running_loop()
        emit(Event(ref.tag or ref.digest, f"Pulling from {ref.familiar}"))
        manifest, _body, digest = await resolve(reg, ref, want)
        what = ref.canonical or ref.familiar
        if manifest.config.size > MAX_JSON:
            raise errdefs.InvalidArgument(f"{what}: config blob of {manifest.config.size} bytes is too large")
        cfg_path, _ = await self.fetcher.fetch(reg, ref.path, manifest.config)
        config = await asyncio.to_thread(Path(cfg_path).read_bytes)
        parsed = parse_config(config, f"{what}: image config")
        if len(parsed.diff_ids) != len(manifest.layers):
            raise errdefs.InvalidArgument(
                f"{what}: manifest has {len(manifest.layers)} layers, config has {len(parsed.diff_ids)}"
            )
        if explicit and (parsed.os, parsed.architecture) != (want.os, want.arch):
            raise errdefs.NotFound(
                f"{what}: image was found but does not match the specified platform: "
                f"wanted {want}, actual: {parsed.os}/{parsed.architecture}"
            )
        chains = chain_ids(parsed.diff_ids)
        stored = [self.images.layerdb.get(c) is not None for c in chains]
        # Layer i is extracted as soon as it and the layers below it are in: the store's register
        # runs in a thread from the start, and each layer's opener waits for its download.
        ready: list[Future[Path | None]] = [Future() for _ in manifest.layers]

        async def one(i: int, desc: Descriptor) -> None:
            ident = short(desc.digest)
            if stored[i]:
                emit(Event(ident, "Already exists"))
                ready[i].set_result(None)  # never opened: the store has this chain
                return
            try:
                path, existed = await self.fetcher.fetch(
                    reg, ref.path, desc, Throttle(emit, ident, "Downloading"),
                    on_start=lambda: emit(Event(ident, "Downloading", 0, desc.size)),
                )
            except BaseException as exc:
                ready[i].set_exception(exc if isinstance(exc, Exception) else errdefs.Unavailable("pull cancelled"))
                raise
            if not existed:
                emit(Event(ident, "Verifying Checksum"))
            emit(Event(ident, "Download complete"))
            ready[i].set_result(path)

        def opener(i: int) -> Callable[[], Readable]:
            def open_blob() -> Readable:
                path = ready[i].result()  # in the store's thread: wait for the download
                if path is None:
                    raise errdefs.Internal(f"layer {manifest.layers[i].digest} was not downloaded")
                loop.call_soon_threadsafe(emit, Event(short(manifest.layers[i].digest), "Extracting"))
                return _ClosingReader(open(path, "rb"))

            return open_blob

        def on_layer(i: int, existed: bool) -> None:
            if not existed:
                loop.call_soon_threadsafe(emit, Event(short(manifest.layers[i].digest), "Pull complete"))

        for i, desc in enumerate(manifest.layers):
            if not stored[i]:
                emit(Event(short(desc.digest), "Waiting"))
        sources = [LayerSource(d.digest, opener(i), d.digest, d.size) for i, d in enumerate(manifest.layers)]
        before = await asyncio.to_thread(_image_id, self.images, ref.local_tag)
        tags = [ref.local_tag] if ref.local_tag else []
        registering = asyncio.ensure_future(asyncio.to_thread(self.images.register, config, sources, tags, on_layer))
        try:
            results = await asyncio.gather(*(one(i, d) for i, d in enumerate(manifest.layers)), return_exceptions=True)
        finally:
            for f in ready:  # cancelled: the store's thread must not wait for a download forever
                if not f.done():
                    f.set_exception(errdefs.Unavailable("pull cancelled"))
        errors = [r for r in results if isinstance(r, BaseException)]
        try:
            image_id = await registering
        except BaseException:
            if errors:  # the download's error, not the store's report of it
                raise errors[0] from None
            raise
        if errors:
            raise errors[0]
        source_repo = f"{ref.domain}/{ref.path}"
        for desc, diff_id in zip(manifest.layers, parsed.diff_ids, strict=True):
            await asyncio.to_thread(self.meta.add_layer, desc.digest, diff_id, source_repo)
        await asyncio.to_thread(self.meta.add_repo_digest, ref.familiar, digest, image_id)
        emit(Event("", f"Digest: {digest}"))
        shown = ref.local_tag or f"{ref.familiar}@{digest}"
        fresh = "Image is up to date for" if before == image_id else "Downloaded newer image for"
        emit(Event("", f"Status: {fresh} {shown}"))
        return PullResult(image_id, digest, shown)


def _image_id(images: ImageStore, tag: str) -> str:
    """The id `tag` names now ("" when nothing): tells "up to date" from "downloaded newer"."""
    if not tag:
        return ""
    try:
        return images.get(tag).id
    except errdefs.NotFound:
        return ""


class _ClosingReader:
    """The store reads a layer to its end and drops it: close the file there, not at gc."""

    def __init__(self, f: Any) -> None:
        self.f = f

    def read(self, n: int = -1, /) -> bytes:
        if self.f.closed:
            return b""
        data: bytes = self.f.read(n)
        if not data or n < 0:
            self.f.close()
        return data
