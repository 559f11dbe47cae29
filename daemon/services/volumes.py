"""VolumeService: docker's `volume` verbs over the volume store (daemon.volumes.store)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc.aio

from ctrd.v1 import volume_pb2 as pb
from ctrd.v1 import volume_pb2_grpc
from daemon.volumes.store import Volume, VolumeStore, created_text

Ctx = grpc.aio.ServicerContext[Any, Any]


def _message(v: Volume) -> pb.Volume:
    return pb.Volume(name=v.name, driver=v.driver, mountpoint=v.mountpoint, created_at=created_text(v.created_at),
                     labels=dict(v.labels), scope="local", options=dict(v.options))


class VolumeServicer(volume_pb2_grpc.VolumeServiceServicer):
    def __init__(self, store: VolumeStore) -> None:
        self.s = store

    async def Create(self, request: pb.VolumeCreateRequest, context: Ctx) -> pb.VolumeCreateResponse:
        v, _ = await asyncio.to_thread(self.s.create, request.name, request.driver, dict(request.labels),
                                       dict(request.driver_opts))
        return pb.VolumeCreateResponse(volume=_message(v))

    async def List(self, request: pb.VolumeListRequest, context: Ctx) -> pb.VolumeListResponse:
        vols = self.s.list_volumes([(f.key, f.value) for f in request.filters])
        return pb.VolumeListResponse(volumes=[_message(v) for v in vols])

    async def Inspect(self, request: pb.VolumeInspectRequest, context: Ctx) -> pb.VolumeInspectResponse:
        return pb.VolumeInspectResponse(json=json.dumps(self.s.get(request.name).to_json()))

    async def Remove(self, request: pb.VolumeRemoveRequest, context: Ctx) -> pb.VolumeRemoveResponse:
        await asyncio.to_thread(self.s.remove, request.name, request.force)
        return pb.VolumeRemoveResponse()

    async def Prune(self, request: pb.VolumePruneRequest, context: Ctx) -> pb.VolumePruneResponse:
        filters = [(f.key, f.value) for f in request.filters]
        removed, space = await asyncio.to_thread(self.s.prune, request.all, filters)
        return pb.VolumePruneResponse(removed=removed, space_reclaimed=space)
