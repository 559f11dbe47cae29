"""ImageService: message in, `await asyncio.to_thread(store call)`, message out.

Errors are ctrd.errdefs exceptions; the daemon's wire mapping (daemon.wiremap) makes them gRPC statuses.
Import/Load archives are spooled to a temp file under the daemon root (never held in memory).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator, Callable
from typing import IO, Any

from ctrd import errdefs, timefmt
from ctrd.v1 import image_pb2, image_pb2_grpc
from daemon.images import view
from daemon.images.store import ImageStore


def _unix(created: str) -> int:
    """RFC 3339 (any fraction digits, Z or offset) → unix seconds; 0 when absent or unparseable."""
    try:
        return int(timefmt.parse_rfc3339(created))
    except ValueError:
        return 0


class ImageServicer(image_pb2_grpc.ImageServiceServicer):
    def __init__(self, store: ImageStore, in_use: Callable[[str], bool] = lambda image_id: False) -> None:
        self.store = store
        self.in_use = in_use  # image id → a container uses it (refuses rm without force)

    async def _spool(self, chunks: AsyncIterator[bytes], spool: IO[bytes]) -> None:
        async for chunk in chunks:
            if chunk:
                await asyncio.to_thread(spool.write, chunk)
        await asyncio.to_thread(spool.flush)
        spool.seek(0)

    async def Import(self, request_iterator: Any, context: Any) -> image_pb2.ImportResponse:
        it = aiter(request_iterator)
        try:
            first = await anext(it)
        except StopAsyncIteration:
            raise errdefs.InvalidArgument("import: empty request stream") from None
        if first.WhichOneof("part") != "header":
            raise errdefs.InvalidArgument("import: the first message must carry the header")
        header = first.header
        # Bad names or --change values fail before the archive is sent through.
        await asyncio.to_thread(self.store.validate_import, header.reference, list(header.changes))

        async def chunks() -> AsyncIterator[bytes]:
            async for req in it:
                if req.WhichOneof("part") != "chunk":
                    raise errdefs.InvalidArgument("import: only the first message may carry a header")
                yield req.chunk

        with tempfile.TemporaryFile(dir=self.store.tmp_dir) as spool:
            await self._spool(chunks(), spool)
            image = await asyncio.to_thread(
                self.store.import_archive, spool, header.reference, list(header.changes)
            )
        return image_pb2.ImportResponse(id=image.id)

    async def Load(self, request_iterator: Any, context: Any) -> image_pb2.LoadResponse:
        async def chunks() -> AsyncIterator[bytes]:
            async for req in request_iterator:
                yield req.chunk

        with tempfile.TemporaryFile(dir=self.store.tmp_dir) as spool:
            await self._spool(chunks(), spool)
            loaded = await asyncio.to_thread(self.store.load_archive, spool)
        return image_pb2.LoadResponse(loaded=loaded)

    async def List(self, request: image_pb2.ImageListRequest, context: Any) -> image_pb2.ImageListResponse:
        images = await asyncio.to_thread(self.store.list)
        return image_pb2.ImageListResponse(
            images=[
                image_pb2.ImageSummary(id=im.id, repo_tags=im.repo_tags, created=_unix(im.created), size=im.size)
                for im in images
            ]
        )

    async def Inspect(self, request: image_pb2.ImageInspectRequest, context: Any) -> image_pb2.ImageInspectResponse:
        doc = await asyncio.to_thread(view.inspect, self.store, request.reference)
        return image_pb2.ImageInspectResponse(json=json.dumps(doc))

    async def Remove(self, request: image_pb2.ImageRemoveRequest, context: Any) -> image_pb2.ImageRemoveResponse:
        untagged, deleted = await asyncio.to_thread(self.store.remove, request.reference, request.force, self.in_use)
        return image_pb2.ImageRemoveResponse(untagged=untagged, deleted=deleted)
