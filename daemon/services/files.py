"""FilesService: message in, domain call, message out (errors mapped at the wire: daemon.wiremap)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc.aio

from ctrd import errdefs
from ctrd.v1 import files_pb2 as pb
from ctrd.v1 import files_pb2_grpc
from daemon.files.paths import PathStat
from daemon.files.service import Files

Ctx = grpc.aio.ServicerContext[Any, Any]


def _stat(s: PathStat) -> pb.PathStat:
    return pb.PathStat(name=s.name, size=s.size, mode=s.mode, go_mode=s.go_mode, mtime=s.mtime,
                       link_target=s.link_target)


class FilesServicer(files_pb2_grpc.FilesServiceServicer):
    def __init__(self, files: Files) -> None:
        self.f = files

    async def ArchiveStat(self, request: pb.ArchiveStatRequest, context: Ctx) -> pb.ArchiveStatResponse:
        return pb.ArchiveStatResponse(stat=_stat(await self.f.stat(request.id, request.path)))

    async def ArchiveGet(self, request: pb.ArchiveGetRequest, context: Ctx) -> AsyncIterator[pb.ArchiveGetResponse]:
        async for part in self.f.archive(request.id, request.path):
            if isinstance(part, PathStat):
                yield pb.ArchiveGetResponse(stat=_stat(part))
            else:
                yield pb.ArchiveGetResponse(chunk=part)

    async def ArchivePut(self, request_iterator: Any, context: Ctx) -> pb.ArchivePutResponse:
        it = aiter(request_iterator)
        try:
            first = await anext(it)
        except StopAsyncIteration:
            raise errdefs.InvalidArgument("archive put: empty request stream") from None
        if first.WhichOneof("part") != "header":
            raise errdefs.InvalidArgument("archive put: the first message must carry the header")
        h = first.header

        async def chunks() -> AsyncIterator[bytes]:
            async for req in it:
                if req.WhichOneof("part") != "chunk":
                    raise errdefs.InvalidArgument("archive put: only the first message may carry a header")
                yield req.chunk

        await self.f.put(h.id, h.path, chunks(), no_overwrite_dir_non_dir=h.no_overwrite_dir_non_dir,
                         copy_uid_gid=h.copy_uid_gid)
        return pb.ArchivePutResponse()

    async def Export(self, request: pb.ExportRequest, context: Ctx) -> AsyncIterator[pb.ExportChunk]:
        async for chunk in self.f.export(request.id):
            yield pb.ExportChunk(chunk=chunk)

    async def Changes(self, request: pb.ChangesRequest, context: Ctx) -> pb.ChangesResponse:
        out = await self.f.changes(request.id)
        return pb.ChangesResponse(changes=[pb.Change(path=p, kind=k) for p, k in out])

    async def Commit(self, request: pb.CommitRequest, context: Ctx) -> pb.CommitResponse:
        image_id = await self.f.commit(request.id, request.reference, request.comment, request.author,
                                       list(request.changes), pause=not request.no_pause)
        return pb.CommitResponse(id=image_id)
