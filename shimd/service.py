"""The shim API servicer: request message in, one Task call, response message out."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.message import Message

from ctrd.shim.v1 import shim_pb2
from shimd.task import Task

VERSION = "ctrd-shim/1"

Handler = Callable[[Any], Awaitable[Message]]


class ShimService:
    def __init__(self, task: Task, on_shutdown: Callable[[], None]) -> None:
        self.task = task
        self._on_shutdown = on_shutdown
        self.methods: dict[str, tuple[type[Message], Handler]] = {
            "Connect": (shim_pb2.ConnectRequest, self.connect),
            "Create": (shim_pb2.CreateRequest, self.create),
            "Start": (shim_pb2.StartRequest, self.start),
            "State": (shim_pb2.StateRequest, self.state),
            "Kill": (shim_pb2.KillRequest, self.kill),
            "Stop": (shim_pb2.StopRequest, self.stop),
            "Wait": (shim_pb2.WaitRequest, self.wait),
            "Pause": (shim_pb2.PauseRequest, self.pause),
            "Resume": (shim_pb2.ResumeRequest, self.resume),
            "Exec": (shim_pb2.ExecRequest, self.exec),
            "Stats": (shim_pb2.StatsRequest, self.stats),
            "Pids": (shim_pb2.PidsRequest, self.pids),
            "Delete": (shim_pb2.DeleteRequest, self.delete),
            "Shutdown": (shim_pb2.ShutdownRequest, self.shutdown),
            "ResizePty": (shim_pb2.ResizePtyRequest, self.resize_pty),
            "CreateExec": (shim_pb2.CreateExecRequest, self.create_exec),
            "StartExec": (shim_pb2.StartExecRequest, self.start_exec),
            "ExecState": (shim_pb2.ExecStateRequest, self.exec_state),
            "WaitExec": (shim_pb2.WaitExecRequest, self.wait_exec),
            "ResizeExec": (shim_pb2.ResizeExecRequest, self.resize_exec),
            "DeleteExec": (shim_pb2.DeleteExecRequest, self.delete_exec),
            "Health": (shim_pb2.HealthRequest, self.health),
            "Update": (shim_pb2.UpdateRequest, self.update),
        }

    async def connect(self, req: shim_pb2.ConnectRequest) -> shim_pb2.ConnectResponse:
        return shim_pb2.ConnectResponse(shim_pid=os.getpid(), task_pid=self.task.pid, version=VERSION)

    async def create(self, req: shim_pb2.CreateRequest) -> shim_pb2.CreateResponse:
        return shim_pb2.CreateResponse(pid=await self.task.create(req))

    async def start(self, req: shim_pb2.StartRequest) -> shim_pb2.StartResponse:
        return shim_pb2.StartResponse(pid=await self.task.start())

    async def state(self, req: shim_pb2.StateRequest) -> shim_pb2.StateResponse:
        t = self.task
        ex = t.exit
        return shim_pb2.StateResponse(
            id=t.id, bundle=t.bundle, pid=t.pid, status=t.status.to_proto(),  # type: ignore[arg-type]
            exit_status=ex.status if ex else 0, exited_at=ex.at if ex else 0.0,
            oom_killed=ex.oom_killed if ex else False,
        )

    async def kill(self, req: shim_pb2.KillRequest) -> shim_pb2.KillResponse:
        await self.task.kill(req.signal, req.all)
        return shim_pb2.KillResponse()

    async def stop(self, req: shim_pb2.StopRequest) -> shim_pb2.StopResponse:
        ex, killed = await self.task.stop(req.signal, req.timeout_ms)
        return shim_pb2.StopResponse(exit_status=ex.status, exited_at=ex.at, killed=killed)

    async def wait(self, req: shim_pb2.WaitRequest) -> shim_pb2.WaitResponse:
        ex = await self.task.wait()
        return shim_pb2.WaitResponse(exit_status=ex.status, exited_at=ex.at, oom_killed=ex.oom_killed)

    async def pause(self, req: shim_pb2.PauseRequest) -> shim_pb2.PauseResponse:
        await self.task.pause()
        return shim_pb2.PauseResponse()

    async def resume(self, req: shim_pb2.ResumeRequest) -> shim_pb2.ResumeResponse:
        await self.task.resume()
        return shim_pb2.ResumeResponse()

    async def exec(self, req: shim_pb2.ExecRequest) -> shim_pb2.ExecResponse:
        status, out, err = await self.task.exec(req)
        return shim_pb2.ExecResponse(exit_status=status, stdout=out, stderr=err)

    async def stats(self, req: shim_pb2.StatsRequest) -> shim_pb2.StatsResponse:
        return await self.task.stats()

    async def pids(self, req: shim_pb2.PidsRequest) -> shim_pb2.PidsResponse:
        return shim_pb2.PidsResponse(pids=await self.task.pids())

    async def delete(self, req: shim_pb2.DeleteRequest) -> shim_pb2.DeleteResponse:
        ex = await self.task.delete()
        return shim_pb2.DeleteResponse(pid=self.task.pid, exit_status=ex.status, exited_at=ex.at)

    async def shutdown(self, req: shim_pb2.ShutdownRequest) -> shim_pb2.ShutdownResponse:
        await self.task.shutdown()
        self._on_shutdown()
        return shim_pb2.ShutdownResponse()

    async def resize_pty(self, req: shim_pb2.ResizePtyRequest) -> shim_pb2.ResizePtyResponse:
        await self.task.resize(req.rows, req.cols)
        return shim_pb2.ResizePtyResponse()

    async def create_exec(self, req: shim_pb2.CreateExecRequest) -> shim_pb2.CreateExecResponse:
        return shim_pb2.CreateExecResponse(io_path=self.task.create_exec(req).io_path)

    async def start_exec(self, req: shim_pb2.StartExecRequest) -> shim_pb2.StartExecResponse:
        return shim_pb2.StartExecResponse(pid=await self.task.start_exec(req.exec_id))

    async def exec_state(self, req: shim_pb2.ExecStateRequest) -> shim_pb2.ExecStateResponse:
        e = self.task.execs.get(req.exec_id)
        return shim_pb2.ExecStateResponse(
            exec_id=e.id, pid=e.pid, status=_EXEC_STATUS[e.status],  # type: ignore[arg-type]
            exit_status=e.exit.status if e.exit else 0, exited_at=e.exit.at if e.exit else 0.0)

    async def wait_exec(self, req: shim_pb2.WaitExecRequest) -> shim_pb2.WaitExecResponse:
        e = await self.task.wait_exec(req.exec_id)
        assert e.exit is not None
        return shim_pb2.WaitExecResponse(exit_status=e.exit.status, exited_at=e.exit.at)

    async def resize_exec(self, req: shim_pb2.ResizeExecRequest) -> shim_pb2.ResizeExecResponse:
        await self.task.resize_exec(req.exec_id, req.rows, req.cols)
        return shim_pb2.ResizeExecResponse()

    async def delete_exec(self, req: shim_pb2.DeleteExecRequest) -> shim_pb2.DeleteExecResponse:
        e = self.task.execs.delete(req.exec_id)
        return shim_pb2.DeleteExecResponse(exit_status=e.exit.status if e.exit else 0)

    async def health(self, req: shim_pb2.HealthRequest) -> shim_pb2.HealthResponse:
        return await self.task.health_state(req.after_seq)

    async def update(self, req: shim_pb2.UpdateRequest) -> shim_pb2.UpdateResponse:
        await self.task.update(req)
        return shim_pb2.UpdateResponse()


_EXEC_STATUS = {"created": shim_pb2.STATUS_CREATED, "running": shim_pb2.STATUS_RUNNING,
                "stopped": shim_pb2.STATUS_STOPPED}
