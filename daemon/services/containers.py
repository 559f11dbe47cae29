"""ContainerService: message in, domain call, message out (errors are mapped at the wire: daemon.wiremap)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc.aio

from ctrd import errdefs
from ctrd.v1 import container_pb2 as pb
from ctrd.v1 import container_pb2_grpc
from daemon.containers import view
from daemon.containers.manager import ContainerManager
from daemon.logs import LogQuery

Ctx = grpc.aio.ServicerContext[Any, Any]


class ContainerServicer(container_pb2_grpc.ContainerServiceServicer):
    def __init__(self, manager: ContainerManager) -> None:
        self.m = manager

    async def Create(self, request: pb.CreateRequest, context: Ctx) -> pb.CreateResponse:
        cid, warnings = await self.m.create(request.spec)
        return pb.CreateResponse(id=cid, warnings=warnings)

    async def Start(self, request: pb.StartRequest, context: Ctx) -> pb.StartResponse:
        await self.m.start(request.id)
        return pb.StartResponse()

    async def Stop(self, request: pb.StopRequest, context: Ctx) -> pb.StopResponse:
        timeout = request.timeout if request.HasField("timeout") else None
        await self.m.stop(request.id, timeout, request.signal)
        return pb.StopResponse()

    async def Restart(self, request: pb.RestartRequest, context: Ctx) -> pb.RestartResponse:
        await self.m.restart(request.id, request.timeout if request.HasField("timeout") else None)
        return pb.RestartResponse()

    async def Kill(self, request: pb.KillRequest, context: Ctx) -> pb.KillResponse:
        await self.m.kill(request.id, request.signal)
        return pb.KillResponse()

    async def Remove(self, request: pb.RemoveRequest, context: Ctx) -> pb.RemoveResponse:
        await self.m.remove(request.id, request.force, request.remove_volumes)
        return pb.RemoveResponse()

    async def Pause(self, request: pb.PauseRequest, context: Ctx) -> pb.PauseResponse:
        await self.m.pause(request.id)
        return pb.PauseResponse()

    async def Resume(self, request: pb.ResumeRequest, context: Ctx) -> pb.ResumeResponse:
        await self.m.resume(request.id)
        return pb.ResumeResponse()

    async def Inspect(self, request: pb.InspectRequest, context: Ctx) -> pb.InspectResponse:
        return pb.InspectResponse(json=json.dumps(self.m.inspect(request.id)))

    async def List(self, request: pb.ListRequest, context: Ctx) -> pb.ListResponse:
        out = pb.ListResponse()
        for c in self.m.list_containers(request.all, dict(request.filters)):
            s = out.containers.add(
                id=c.id, names=["/" + c.name], image=c.config.image, command=view.command_line(c),
                created=int(c.created), state=c.status.value, status=view.status_text(c),
            )
            if c.config.labels:
                s.labels.update(dict(c.config.labels))
            if c.host_config.mounts:  # (most containers have none: a thousand rows, each call counts)
                s.mounts.extend(view.mount_names(c))
                s.local_volumes = view.local_volume_count(c)
            s.networks.extend(view.network_names(c))
            for m in c.network.ports if c.network is not None else ():
                s.ports.add(ip=m.host_ip or "0.0.0.0", public_port=m.host_port,
                            private_port=m.container_port, type=m.protocol)
        return out

    async def Wait(self, request: pb.WaitRequest, context: Ctx) -> pb.WaitResponse:
        code, error = await self.m.wait(request.id, request.condition)
        return pb.WaitResponse(exit_code=code, error=error)

    async def Logs(self, request: pb.LogsRequest, context: Ctx) -> AsyncIterator[pb.LogsResponse]:
        both = not request.stdout and not request.stderr
        q = LogQuery(
            tail=request.tail if request.tail >= 0 else -1,
            since=request.since, until=request.until,
            stdout=request.stdout or both, stderr=request.stderr or both, follow=request.follow,
        )
        async for e in self.m.logs(request.id, q):
            yield pb.LogsResponse(stream=e.stream, data=e.data, time=e.time, attrs=dict(e.attrs))

    async def Top(self, request: pb.TopRequest, context: Ctx) -> pb.TopResponse:
        titles, rows = await self.m.top(request.id)
        return pb.TopResponse(titles=titles, processes=[pb.TopRow(values=r) for r in rows])

    async def Stats(self, request: pb.StatsRequest, context: Ctx) -> AsyncIterator[pb.StatsResponse]:
        while True:
            c, st = await self.m.stats(request.id)
            yield pb.StatsResponse(
                id=c.id, name="/" + c.name, memory_usage=st.memory_usage, memory_limit=st.memory_limit,
                cpu_usage_ns=st.cpu_usage_ns, system_cpu_ns=_system_cpu_ns(), online_cpus=os.cpu_count() or 1,
                pids_current=st.pids_current, pids_limit=st.pids_limit, read_time=time.time(),
            )
            if not request.stream:
                return
            await asyncio.sleep(1.0)

    async def Exec(self, request: pb.ExecRequest, context: Ctx) -> pb.ExecResponse:
        r = await self.m.exec(request.id, list(request.args), list(request.env), request.user, request.working_dir,
                              timeout=context.time_remaining())
        return pb.ExecResponse(exit_code=r.exit_code, stdout=r.stdout, stderr=r.stderr)

    async def Rename(self, request: pb.RenameRequest, context: Ctx) -> pb.RenameResponse:
        await self.m.rename(request.id, request.name)
        return pb.RenameResponse()

    async def Update(self, request: pb.UpdateRequest, context: Ctx) -> pb.UpdateResponse:
        await self.m.update(request)
        return pb.UpdateResponse()

    async def Attach(self, request_iterator: Any, context: Ctx) -> AsyncIterator[pb.AttachResponse]:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("msg") != "open":
            raise errdefs.InvalidArgument("open: the first request of an attach stream must be open")
        stream = self.m.exec_attach(first.open, requests) if first.open.exec_id else self.m.attach(first.open, requests)
        async for resp in stream:
            yield resp

    async def Resize(self, request: pb.ResizeRequest, context: Ctx) -> pb.ResizeResponse:
        if request.exec_id:
            await self.m.exec_resize(request.exec_id, request.rows, request.cols)
        else:
            await self.m.resize(request.id, request.rows, request.cols)
        return pb.ResizeResponse()

    async def ExecCreate(self, request: pb.ExecCreateRequest, context: Ctx) -> pb.ExecCreateResponse:
        r = request
        size = (r.console_rows, r.console_cols) if r.console_rows or r.console_cols else None
        eid = self.m.exec_create(r.id, list(r.args), list(r.env), r.user, r.working_dir, r.tty, r.attach_stdin,
                                 r.attach_stdout, r.attach_stderr, r.privileged, r.detach_keys, size)
        return pb.ExecCreateResponse(exec_id=eid)

    async def ExecStart(self, request: pb.ExecStartRequest, context: Ctx) -> pb.ExecStartResponse:
        await self.m.exec_start(request.exec_id)
        return pb.ExecStartResponse()

    async def ExecInspect(self, request: pb.ExecInspectRequest, context: Ctx) -> pb.ExecInspectResponse:
        return pb.ExecInspectResponse(json=json.dumps(self.m.exec_inspect(request.exec_id)))

def _system_cpu_ns() -> int:
    """Total host CPU time (docker's system_cpu_usage), for CPU % between two samples."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields) * 1_000_000_000 // ticks
