"""CleanupService: container/image prune and disk usage (errors mapped at the wire: daemon.wiremap)."""

from __future__ import annotations

from typing import Any

import grpc.aio

from ctrd.v1 import cleanup_pb2 as pb
from ctrd.v1 import cleanup_pb2_grpc
from daemon.cleanup.service import Cleanup
from daemon.containers import view

Ctx = grpc.aio.ServicerContext[Any, Any]


class CleanupServicer(cleanup_pb2_grpc.CleanupServiceServicer):
    def __init__(self, cleanup: Cleanup) -> None:
        self.c = cleanup

    async def ContainerPrune(self, request: pb.ContainerPruneRequest, context: Ctx) -> pb.ContainerPruneResponse:
        deleted, space = await self.c.prune_containers([(f.key, f.value) for f in request.filters])
        return pb.ContainerPruneResponse(deleted=deleted, space_reclaimed=space)

    async def ImagePrune(self, request: pb.ImagePruneRequest, context: Ctx) -> pb.ImagePruneResponse:
        items, space = await self.c.prune_images([(f.key, f.value) for f in request.filters], request.all)
        return pb.ImagePruneResponse(images_deleted=[pb.ImageDeleted(untagged=u, deleted=d) for u, d in items],
                                     space_reclaimed=space)

    async def DiskUsage(self, request: pb.DiskUsageRequest, context: Ctx) -> pb.DiskUsageResponse:
        u = await self.c.usage()
        out = pb.DiskUsageResponse(layers_size=u.layers_size)
        for im in u.images:
            out.images.add(id=im.id, repo_tags=im.repo_tags, created=int(im.created), size=im.size,
                           shared_size=im.shared_size, containers=im.containers)
        for cu in u.containers:
            c = cu.c
            out.containers.add(id=c.id, names=["/" + c.name], image=c.config.image, command=view.command_line(c),
                               created=int(c.created), state=c.status.value, status=view.status_text(c),
                               size_rw=cu.size_rw, size_root_fs=cu.size_root_fs,
                               local_volumes=view.local_volume_count(c))
        for v in u.volumes:
            out.volumes.add(name=v.name, driver=v.driver, size=v.size, ref_count=v.ref_count)
        return out
