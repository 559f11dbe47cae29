"""The content store: registry blobs by digest under `<root>/content/`, verified before they exist.

    blobs/sha256/<hex>     committed blobs (their sha256 was checked while they streamed in)
    ingest/<hex>           a download in progress: appended to, resumed with `Range`, and renamed
                           to blobs/ only when the digest and size match (else deleted)

`Fetcher` is the one place blobs are downloaded: a blob wanted by several pulls at once is
downloaded once (the others wait on the same task), and a daemon-wide semaphore keeps at most
`max_downloads` blob downloads running (docker's max-concurrent-downloads, default 3).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctrd import errdefs
from daemon.atomic import fsync_dir
from daemon.distribution.client import Registry, RetryableStatus, error_message, retrying
from daemon.distribution.manifest import Descriptor

log = logging.getLogger(__name__)
CHUNK = 1 << 20
# (bytes so far, total) for a download; called on the event loop
OnBytes = Callable[[int, int], None]


class DigestMismatch(errdefs.Internal):
    pass


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.ingest = self.root / "ingest"
        self.blobs.mkdir(mode=0o700, parents=True, exist_ok=True)
        # a download a killed daemon left behind is not trusted: the next pull starts it again
        shutil.rmtree(self.ingest, ignore_errors=True)
        self.ingest.mkdir(mode=0o700)

    def path(self, digest: str) -> Path:
        return self.blobs / digest.removeprefix("sha256:")

    def has(self, digest: str, size: int = -1) -> bool:
        try:
            st = self.path(digest).stat()
        except FileNotFoundError:
            return False
        return size < 0 or st.st_size == size

    def ingest_path(self, digest: str) -> Path:
        return self.ingest / digest.removeprefix("sha256:")

    def commit(self, tmp: Path, digest: str) -> Path:
        dst = self.path(digest)
        os.rename(tmp, dst)
        fsync_dir(self.blobs)
        return dst

    def write(self, data: bytes, digest: str) -> Path:
        """Store small content (a manifest or config already in memory) under its digest."""
        tmp = self.ingest / f"{digest.removeprefix('sha256:')}.{os.getpid()}.w"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return self.commit(tmp, digest)


class Fetcher:
    def __init__(self, store: ContentStore, max_downloads: int = 3) -> None:
        self.store = store
        self.slots = asyncio.Semaphore(max_downloads)
        self.max_downloads = max_downloads
        self._inflight: dict[str, asyncio.Task[Path]] = {}
        self._listeners: dict[str, list[OnBytes]] = {}
        self.active = 0  # downloads running now (for tests and `info`)
        self.peak = 0

    async def fetch(self, reg: Registry, repo: str, desc: Descriptor, on_bytes: OnBytes | None = None,
                    on_start: Callable[[], None] | None = None) -> tuple[Path, bool]:
        """(path of the verified blob, whether it was already there). Shares concurrent downloads."""
        if self.store.has(desc.digest, desc.size):
            return self.store.path(desc.digest), True
        task = self._inflight.get(desc.digest)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._download(reg, repo, desc, on_start))
            self._inflight[desc.digest] = task
            self._listeners[desc.digest] = []
            digest = desc.digest
            task.add_done_callback(lambda _t: self._done(digest))
        elif on_start is not None:
            on_start()
        if on_bytes is not None:
            self._listeners[desc.digest].append(on_bytes)
        # shield: one waiter giving up (its client went away) must not cancel the others' download
        return await asyncio.shield(task), False

    def inflight(self) -> set[str]:
        return set(self._inflight)

    def _done(self, digest: str) -> None:
        self._inflight.pop(digest, None)
        self._listeners.pop(digest, None)

    def _report(self, digest: str, done: int, total: int) -> None:
        for cb in self._listeners.get(digest, ()):
            cb(done, total)

    async def _download(self, reg: Registry, repo: str, desc: Descriptor, on_start: Callable[[], None] | None) -> Path:
        async with self.slots:
            self.active += 1
            self.peak = max(self.peak, self.active)
            try:
                if on_start is not None:
                    on_start()
                return await self._download_locked(reg, repo, desc)
            finally:
                self.active -= 1

    async def _download_locked(self, reg: Registry, repo: str, desc: Descriptor) -> Path:
        tmp = self.store.ingest_path(desc.digest)
        what = f"blob {desc.digest}"
        h = hashlib.sha256()
        have = 0
        if tmp.exists():  # left by an earlier pull in this daemon's life: hash it and go on from there
            with open(tmp, "rb") as part:
                while chunk := part.read(CHUNK):
                    h.update(chunk)
                    have += len(chunk)
            if have > desc.size:
                tmp.unlink()
                h, have = hashlib.sha256(), 0
        f = open(tmp, "ab")  # noqa: SIM115 (closed below)
        try:
            async def attempt(n: int) -> None:
                nonlocal h, have
                if have == desc.size:
                    return
                headers = {"Range": f"bytes={have}-"} if have else {}
                path = f"/v2/{repo}/blobs/{desc.digest}"
                async with reg.request("GET", path, f"repository:{repo}:pull", headers=headers) as resp:
                    if resp.status >= 500 or resp.status == 429:
                        raise RetryableStatus(resp.status, what)
                    if resp.status == 404:
                        raise errdefs.NotFound(f"{what}: blob unknown to registry ({repo})")
                    if resp.status == 206 and have:
                        start = _range_start(resp.headers.get("Content-Range", ""))
                        if start != have:
                            raise errdefs.Unavailable(f"{what}: registry answered range from {start}, asked {have}")
                        log.info("%s: resuming at byte %d", what, have)
                    elif resp.status == 200:
                        if have:  # no Range support: start over
                            f.seek(0)
                            f.truncate()
                            h, have = hashlib.sha256(), 0
                    else:
                        raise errdefs.Unavailable(f"{what}: {await error_message(resp)}")
                    pending: list[bytes] = []
                    size = 0
                    # hashing and writing release the GIL: in a thread they run on the other core
                    # while the loop reads the next MiB (one piece in flight keeps the order)
                    writing: asyncio.Future[None] | None = None
                    try:
                        async for chunk in resp.content.iter_any():
                            if have + size + len(chunk) > desc.size:
                                raise DigestMismatch(
                                    f"{what}: more than the {desc.size} bytes the manifest says", reason="digest-mismatch"
                                )
                            pending.append(chunk)
                            size += len(chunk)
                            if size >= CHUNK:
                                if writing is not None:
                                    await writing
                                writing = asyncio.ensure_future(asyncio.to_thread(_absorb, f, h, pending))
                                have += size
                                pending, size = [], 0
                                self._report(desc.digest, have, desc.size)
                    finally:
                        if writing is not None:
                            await writing
                    if pending:
                        _absorb(f, h, pending)
                        have += size
                        self._report(desc.digest, have, desc.size)
                    f.flush()
                    if have < desc.size:
                        # a connection closed early without an error still counts as cut: resume
                        import aiohttp  # first use: see client.py

                        raise aiohttp.ClientPayloadError(f"{what}: body ended at byte {have} of {desc.size}")

            await retrying(what, reg.opts, attempt)
            os.fsync(f.fileno())
        except DigestMismatch:
            f.close()
            tmp.unlink(missing_ok=True)
            raise
        except BaseException:
            f.close()  # the partial file stays: a rerun resumes from it
            raise
        f.close()
        got = "sha256:" + h.hexdigest()
        if got != desc.digest:
            tmp.unlink(missing_ok=True)  # never kept, never resumed: the bytes are wrong
            raise DigestMismatch(f"{what}: digest mismatch: content is {got}", reason="digest-mismatch")
        return self.store.commit(tmp, desc.digest)


def _absorb(f: Any, h: Any, chunks: list[bytes]) -> None:
    data = b"".join(chunks)
    f.write(data)
    h.update(data)


def _range_start(value: str) -> int:
    """`bytes 100-199/200` → 100 (-1 when unparseable)."""
    try:
        unit, _, rest = value.partition(" ")
        return int(rest.split("-", 1)[0]) if unit == "bytes" else -1
    except ValueError:
        return -1
