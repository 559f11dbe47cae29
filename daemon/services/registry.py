"""The registry RPCs of ImageService (Pull, Push, Login, Tag, Save) and RepoDigests on inspect.

A subclass of the image servicer, so that the image verbs that predate registries stay as they
were. Progress events arrive on the event loop and are streamed to the client as they come.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from ctrd.dockerconfig import Credentials
from ctrd.v1 import image_pb2
from daemon.distribution.progress import Event
from daemon.distribution.service import Distribution
from daemon.images import view
from daemon.images.store import ImageStore
from daemon.services.images import ImageServicer

T = TypeVar("T")
_CHUNK = 1 << 20


def _creds(msg: image_pb2.RegistryAuth) -> Credentials:
    return Credentials(msg.username, msg.password, msg.identity_token)


async def _stream(run: Callable[[Callable[[Event], None]], Awaitable[T]],
                  last: Callable[[T], image_pb2.Progress]) -> AsyncIterator[image_pb2.Progress]:
    """Run a verb and yield its progress events while it runs, then its final message."""
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    task = asyncio.ensure_future(run(queue.put_nowait))
    task.add_done_callback(lambda _t: queue.put_nowait(None))
    try:
        while (ev := await queue.get()) is not None:
            yield image_pb2.Progress(id=ev.id, status=ev.status, current=ev.current, total=ev.total)
        yield last(task.result())  # raises the verb's error, which the wire mapping maps
    finally:
        if not task.done():  # the client went away: stop this pull (shared downloads carry on)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class RegistryImageServicer(ImageServicer):
    def __init__(self, store: ImageStore, dist: Distribution,
                 in_use: Callable[[str], bool] = lambda image_id: False) -> None:
        super().__init__(store, in_use)
        self.dist = dist

    async def Pull(self, request: image_pb2.PullRequest, context: Any) -> AsyncIterator[image_pb2.Progress]:
        async for msg in _stream(
            lambda emit: self.dist.pull(request.reference, request.platform, _creds(request.auth), emit),
            lambda r: image_pb2.Progress(id=r.reference, status="done", image_id=r.image_id, digest=r.digest),
        ):
            yield msg

    async def Push(self, request: image_pb2.PushRequest, context: Any) -> AsyncIterator[image_pb2.Progress]:
        async for msg in _stream(
            lambda emit: self.dist.push(request.reference, _creds(request.auth), emit),
            lambda r: image_pb2.Progress(status="done", digest=r[0], image_id=r[1]),
        ):
            yield msg

    async def Login(self, request: image_pb2.LoginRequest, context: Any) -> image_pb2.LoginResponse:
        return image_pb2.LoginResponse(status=await self.dist.login(request.registry, _creds(request.auth)))

    async def Tag(self, request: image_pb2.TagRequest, context: Any) -> image_pb2.TagResponse:
        return image_pb2.TagResponse(tag=await asyncio.to_thread(self.store.tag, request.source, request.target))

    async def Save(self, request: image_pb2.SaveRequest, context: Any) -> AsyncIterator[image_pb2.SaveChunk]:
        with tempfile.TemporaryFile(dir=self.store.tmp_dir) as spool:
            await asyncio.to_thread(self.dist.save, list(request.references), spool)
            await asyncio.to_thread(spool.seek, 0)
            while chunk := await asyncio.to_thread(spool.read, _CHUNK):
                yield image_pb2.SaveChunk(chunk=chunk)

    async def List(self, request: image_pb2.ImageListRequest, context: Any) -> image_pb2.ImageListResponse:
        resp = await super().List(request, context)
        for im in resp.images:
            im.repo_digests.extend(self.dist.repo_digests(im.id))
        return resp

    async def Remove(self, request: image_pb2.ImageRemoveRequest, context: Any) -> image_pb2.ImageRemoveResponse:
        resp = await super().Remove(request, context)
        if resp.deleted:
            await asyncio.to_thread(self.dist.gc)  # the registry blobs only that image needed
        return resp

    async def Inspect(self, request: image_pb2.ImageInspectRequest, context: Any) -> image_pb2.ImageInspectResponse:
        doc = await asyncio.to_thread(view.inspect, self.store, request.reference)
        doc["RepoDigests"] = self.dist.repo_digests(doc["Id"])
        return image_pb2.ImageInspectResponse(json=json.dumps(doc))
