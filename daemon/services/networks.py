"""NetworkService: docker's `network` verbs over the user-defined networks (daemon.network.usernets)."""

from __future__ import annotations

import json
from typing import Any

import grpc.aio

from ctrd import errdefs
from ctrd.v1 import network_pb2 as pb
from ctrd.v1 import network_pb2_grpc
from daemon.containers.manager import ContainerManager
from daemon.containers.state import is_alive
from daemon.network.endpoint_view import builtin_id
from daemon.network.usernets import UserNetworks

Ctx = grpc.aio.ServicerContext[Any, Any]
BUILTIN = (("bridge", "bridge"), ("host", "host"), ("none", "null"))


class NetworkServicer(network_pb2_grpc.NetworkServiceServicer):
    def __init__(self, networks: UserNetworks, manager: ContainerManager) -> None:
        self.n = networks
        self.m = manager

    def _forget_removed(self) -> None:
        self.n.forget_containers(c.id for c in self.m.store)

    async def Create(self, request: pb.NetworkCreateRequest, context: Ctx) -> pb.NetworkCreateResponse:
        rec = await self.n.create(
            request.name, subnet=request.subnet, gateway=request.gateway, internal=request.internal,
            labels=dict(request.labels), options=dict(request.options),
        )
        return pb.NetworkCreateResponse(id=rec.id)

    async def List(self, request: pb.NetworkListRequest, context: Ctx) -> pb.NetworkListResponse:
        out = [pb.NetworkSummary(id=builtin_id(name), name=name, driver=driver, scope="local") for name, driver in BUILTIN]
        for rec in self.n.store:
            out.append(pb.NetworkSummary(id=rec.id, name=rec.name, driver="bridge", scope="local", subnet=rec.subnet,
                                         internal=rec.internal, labels=dict(rec.labels), created=rec.created))
        return pb.NetworkListResponse(networks=out)

    async def Inspect(self, request: pb.NetworkInspectRequest, context: Ctx) -> pb.NetworkInspectResponse:
        self._forget_removed()
        for name, driver in BUILTIN:
            if request.id in (name, builtin_id(name)):
                obj: dict[str, Any] = {"Name": name, "Id": builtin_id(name), "Scope": "local", "Driver": driver,
                                       "Internal": False, "Containers": {}, "Options": {}, "Labels": {}}
                return pb.NetworkInspectResponse(json=json.dumps(obj))
        return pb.NetworkInspectResponse(json=json.dumps(self.n.inspect(self.n.store.get(request.id))))

    async def Remove(self, request: pb.NetworkRemoveRequest, context: Ctx) -> pb.NetworkRemoveResponse:
        if request.id in (name for name, _ in BUILTIN):
            raise errdefs.FailedPrecondition(f"{request.id} is a pre-defined network and cannot be removed")
        self._forget_removed()
        await self.n.remove(request.id)
        return pb.NetworkRemoveResponse()

    async def Prune(self, request: pb.NetworkPruneRequest, context: Ctx) -> pb.NetworkPruneResponse:
        self._forget_removed()
        in_use = {c.host_config.network_mode for c in self.m.store}
        removed = []
        for rec in list(self.n.store):
            if rec.name not in in_use and rec.id not in in_use and not rec.endpoints:
                await self.n.remove(rec.id)
                removed.append(rec.name)
        return pb.NetworkPruneResponse(removed=removed)

    async def Connect(self, request: pb.NetworkConnectRequest, context: Ctx) -> pb.NetworkConnectResponse:
        c = self.m.store.get(request.container)
        rec = self.n.store.get(request.network)
        if c.host_config.network_mode in (rec.name, rec.id):
            raise errdefs.AlreadyExists(f"container {c.name} is already connected to network {rec.name}")
        if c.host_config.network_mode in ("host", "none") or c.host_config.network_mode.startswith("container:"):
            raise errdefs.FailedPrecondition(
                f"container {c.name} uses network mode {c.host_config.network_mode}: it cannot join other networks"
            )
        sandbox = c.network.sandbox_key if is_alive(c.status) and c.network is not None else ""
        await self.n.connect(rec.id, c.id, name=c.name, aliases=list(request.aliases), sandbox_key=sandbox,
                             ip=request.ip)
        return pb.NetworkConnectResponse()

    async def Disconnect(self, request: pb.NetworkDisconnectRequest, context: Ctx) -> pb.NetworkDisconnectResponse:
        c = self.m.store.get(request.container)
        await self.n.disconnect(request.network, c.id, name=c.name)
        return pb.NetworkDisconnectResponse()
