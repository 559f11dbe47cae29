"""The daemon's registry verbs in one object: pull, push, login, save, repo digests.

Owns the content store, the daemon-wide download cap and the distribution metadata; each verb
opens its own HTTP session (connections are reused within a pull, whose blobs come from one host).
Credentials: the ones the request carries (ctrctl sends what its config.json has), else the
daemon user's own docker config.json.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import BinaryIO

from ctrd import dockerconfig, errdefs
from ctrd.dockerconfig import Credentials
from daemon.distribution import names, platforms
from daemon.distribution.client import Options, Registry, login, new_session
from daemon.distribution.content import ContentStore, Fetcher
from daemon.distribution.keep import KeptBlob
from daemon.distribution.metadata import Metadata
from daemon.distribution.progress import Emit
from daemon.distribution.pull import Puller, PullResult
from daemon.distribution.push import Pusher
from daemon.distribution.save import save
from daemon.images.store import ImageStore

log = logging.getLogger(__name__)


class Distribution:
    def __init__(self, images: ImageStore, root: Path, opts: Options | None = None, max_downloads: int = 3,
                 config_path: Path | None = None) -> None:
        self.images = images
        self.opts = opts or Options()
        self.content = ContentStore(Path(root) / "content")
        self.meta = Metadata(images.meta)
        self.fetcher = Fetcher(self.content, max_downloads)
        self.config_path = config_path  # None: $DOCKER_CONFIG or ~/.docker/config.json
        images.keep_blobs = lambda: KeptBlob(self.content, self.meta)

    def _creds(self, domain: str, given: Credentials) -> Credentials:
        return given if given else dockerconfig.lookup(domain, self.config_path)

    async def pull(self, ref_text: str, platform: str, creds: Credentials, emit: Emit) -> PullResult:
        ref = names.parse(ref_text)
        want = platforms.parse(platform)
        puller = Puller(self.images, self.fetcher, self.meta)
        async with new_session(self.opts) as session:
            # registry-mirrors serve Docker Hub's content (docker's rule): each is tried in turn,
            # and the Hub itself when none has the image or none answers
            for mirror in self.mirrors() if ref.domain == names.HUB_DOMAIN else []:
                reg = Registry(session, mirror, self._creds(mirror, Credentials()), self.opts)
                try:
                    return await puller.pull(reg, ref, want, emit, bool(platform))
                except (errdefs.NotFound, errdefs.Unavailable, errdefs.FailedPrecondition) as exc:
                    log.info("mirror %s: %s; trying the next source", mirror, exc)
            reg = Registry(session, ref.host, self._creds(ref.domain, creds), self.opts)
            return await puller.pull(reg, ref, want, emit, bool(platform))

    def mirrors(self) -> list[str]:
        """host[:port] of each configured mirror (a URL's scheme and path are dropped)."""
        return [m.split("://", 1)[-1].split("/", 1)[0] for m in self.opts.mirrors if m.strip()]

    async def push(self, ref_text: str, creds: Credentials, emit: Emit) -> tuple[str, str]:
        """(manifest digest, image id) of a pushed local image."""
        ref = names.parse(ref_text)
        if ref.digest:
            raise errdefs.InvalidArgument(f"push: cannot push a digest reference: {ref_text}")
        image = await asyncio.to_thread(self.images.get, ref.local_tag)
        async with new_session(self.opts) as session:
            reg = Registry(session, ref.host, self._creds(ref.domain, creds), self.opts)
            digest = await Pusher(self.images, self.content, self.meta).push(reg, ref, ref.local_tag, emit)
        return digest, image.id

    async def login(self, registry: str, creds: Credentials) -> str:
        if not registry or "/" in registry:
            raise errdefs.InvalidArgument(f"login: registry must be host[:port], got {registry[:200]!r}")
        if not creds.username and not creds.identity_token:
            raise errdefs.InvalidArgument("login: username is required")
        host = names.HUB_HOST if registry in ("docker.io", "index.docker.io") else registry
        async with new_session(self.opts) as session:
            return await login(session, host, creds, self.opts)

    def save(self, refs: list[str], out: BinaryIO) -> None:
        save(self.images, self.content, self.meta, refs, out)

    def repo_digests(self, image_id: str) -> list[str]:
        return self.meta.repo_digests(image_id)

    def gc(self) -> list[str]:
        """Remove blobs no stored image needs (after rmi); returns their digests.

        A layer blob stays while some image has its diff id; a config blob while its image exists.
        Downloads in flight are in ingest/, not blobs/, so they are never touched."""
        images = self.images.list()
        wanted_diffs = {d for im in images for d in im.diff_ids}
        ids = {im.id for im in images}
        removed = []
        for entry in list(self.content.blobs.iterdir()):
            digest = "sha256:" + entry.name
            diff = self.meta.diff_id(digest)
            if digest in ids or (diff and diff in wanted_diffs) or digest in self.fetcher.inflight():
                continue
            if not diff and not self._is_config(entry):
                continue  # unknown content (a manifest, a blob of a pull being registered): keep it
            entry.unlink(missing_ok=True)
            removed.append(digest)
        return removed

    @staticmethod
    def _is_config(path: Path) -> bool:
        try:
            with open(path, "rb") as f:
                head = f.read(4096)
        except OSError:
            return False
        return head.startswith(b"{") and b'"rootfs"' in head
