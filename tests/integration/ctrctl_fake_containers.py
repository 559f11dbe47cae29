"""The fake daemon's ContainerService: containers are host subprocesses (see ctrctl_fake.py)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

from ctrd import errdefs
from ctrd.v1 import container_pb2, container_pb2_grpc
from tests.integration.ctrctl_fake import FakeContainer, FakeDaemon
from tests.integration.ctrctl_fake_wire import Call, server_stream, unary


class Containers(container_pb2_grpc.ContainerServiceServicer):
    def __init__(self, fake: FakeDaemon) -> None:
        self.fake = fake
        self.execs: dict[str, container_pb2.ExecCreateRequest] = {}

    @unary
    def Create(self, req: container_pb2.CreateRequest, ctx: Call) -> container_pb2.CreateResponse:
        f, spec = self.fake, req.spec
        if not any(spec.image in ([*tags, i, i[7:19]]) or spec.image + ":latest" in tags
                   for i, tags in f.images.items()):
            raise errdefs.NotFound(f"no such image: {spec.image}", reason=errdefs.REASON_NO_SUCH_IMAGE)
        if spec.network_mode not in ("", "bridge", "none", "host"):
            raise errdefs.NotFound(f"network {spec.network_mode} not found")
        cid = secrets.token_hex(32)
        name = spec.name or f"fake_{cid[:6]}"
        with f.lock:
            if any(c.name == name for c in f.containers.values()):
                raise errdefs.AlreadyExists(f"container name {name} is already in use")
            c = FakeContainer(cid, name, spec, time.time())
            f.containers[cid] = c
        f.emit("create", c)
        return container_pb2.CreateResponse(id=cid)

    @unary
    def Start(self, req: container_pb2.StartRequest, ctx: Call) -> container_pb2.StartResponse:
        c = self.fake.resolve(req.id)
        if c.state in ("running", "paused"):
            raise errdefs.FailedPrecondition(f"container {c.id} is already running")
        c.output_done = False  # the log keeps earlier runs' output, like the json-file log
        self.fake.run(c)
        return container_pb2.StartResponse()

    def _signal(self, c: FakeContainer, sig: str) -> None:
        if c.state != "running" or c.proc is None:
            raise errdefs.FailedPrecondition(f"container {c.id} is not running")
        num = int(sig) if sig.isdigit() else signal.Signals[sig if sig.upper().startswith("SIG") else "SIG" + sig]
        os.killpg(c.proc.pid, num)

    @unary
    def Kill(self, req: container_pb2.KillRequest, ctx: Call) -> container_pb2.KillResponse:
        c = self.fake.resolve(req.id)
        self._signal(c, req.signal or "SIGKILL")
        self.fake.emit("kill", c, signal=req.signal or "SIGKILL")
        return container_pb2.KillResponse()

    @unary
    def Stop(self, req: container_pb2.StopRequest, ctx: Call) -> container_pb2.StopResponse:
        c = self.fake.resolve(req.id)
        if c.state == "running" and c.proc is not None:
            self._signal(c, req.signal or "SIGTERM")
            try:
                c.proc.wait(req.timeout if req.HasField("timeout") else 10)
            except subprocess.TimeoutExpired:
                self._signal(c, "SIGKILL")
        with self.fake.lock:
            self.fake.lock.wait_for(lambda: c.state != "running", timeout=10)
        return container_pb2.StopResponse()

    @unary
    def Remove(self, req: container_pb2.RemoveRequest, ctx: Call) -> container_pb2.RemoveResponse:
        c = self.fake.resolve(req.id)
        if c.state == "running":
            if not req.force:
                raise errdefs.FailedPrecondition(f"cannot remove running container {c.id}: stop it or use force")
            self._signal(c, "SIGKILL")
            with self.fake.lock:
                self.fake.lock.wait_for(lambda: c.state != "running", timeout=10)
        with self.fake.lock:
            self.fake.containers.pop(c.id, None)
        self.fake.emit("destroy", c)
        return container_pb2.RemoveResponse()

    @unary
    def Inspect(self, req: container_pb2.InspectRequest, ctx: Call) -> container_pb2.InspectResponse:
        return container_pb2.InspectResponse(json=self.fake.inspect_json(self.fake.resolve(req.id)))

    @unary
    def List(self, req: container_pb2.ListRequest, ctx: Call) -> container_pb2.ListResponse:
        with self.fake.lock:
            cs = [c for c in self.fake.containers.values() if req.all or c.state == "running"]
        return container_pb2.ListResponse(containers=[self.fake.summary(c) for c in cs])

    @unary
    def Wait(self, req: container_pb2.WaitRequest, ctx: Call) -> container_pb2.WaitResponse:
        c = self.fake.resolve(req.id)
        with self.fake.lock:
            while c.state != "exited" and ctx.is_active():
                self.fake.lock.wait(0.5)
        return container_pb2.WaitResponse(exit_code=c.exit_code)

    @server_stream
    def Logs(self, req: container_pb2.LogsRequest, ctx: Call) -> Iterator[container_pb2.LogsResponse]:
        f = self.fake
        c = f.resolve(req.id)
        with f.lock:
            i = 0 if req.tail < 0 else max(0, len(c.logs) - req.tail)
            f.followers += req.follow  # from here on no line is missed (tests wait for this)
            f.lock.notify_all()
        while ctx.is_active():
            with f.lock:
                batch, i = c.logs[i:], len(c.logs)
                done = c.output_done or (c.state == "created" and f.end_follow_unless_running)
            for stream, data, ts, when in batch:
                if (req.since and when < req.since) or (req.until and when > req.until):
                    continue
                yield container_pb2.LogsResponse(stream=stream, data=data, time=ts)
            if not req.follow or (done and i == len(c.logs)):
                return
            with f.lock:
                f.lock.wait(0.2)

    @unary
    def Top(self, req: container_pb2.TopRequest, ctx: Call) -> container_pb2.TopResponse:
        c = self.fake.resolve(req.id)
        if c.state != "running" or c.proc is None:
            raise errdefs.FailedPrecondition(f"container {c.id} is not running")
        resp = container_pb2.TopResponse(titles=["PID", "CMD"])
        resp.processes.add(values=[str(c.proc.pid), " ".join(c.proc.args)])  # type: ignore[arg-type]
        return resp

    @unary
    def Exec(self, req: container_pb2.ExecRequest, ctx: Call) -> container_pb2.ExecResponse:
        c = self.fake.resolve(req.id)
        if c.state != "running":
            raise errdefs.FailedPrecondition(f"container {c.id} is not running")
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        env.update(e.split("=", 1) for e in req.env if "=" in e)
        try:
            r = subprocess.run(list(req.args), capture_output=True, env=env, timeout=30)
        except FileNotFoundError:
            raise errdefs.InvalidArgument(f'exec: "{req.args[0]}": executable file not found in $PATH',
                                          reason=errdefs.REASON_EXEC_NOT_FOUND)
        return container_pb2.ExecResponse(exit_code=r.returncode, stdout=r.stdout, stderr=r.stderr)

    @unary
    def ExecCreate(self, req: container_pb2.ExecCreateRequest, ctx: Call) -> container_pb2.ExecCreateResponse:
        c = self.fake.resolve(req.id)
        if c.state != "running":
            raise errdefs.FailedPrecondition(f"Container {c.id} is not running")
        eid = secrets.token_hex(32)
        self.execs[eid] = req
        return container_pb2.ExecCreateResponse(exec_id=eid)

    async def Attach(self, requests: AsyncIterator[container_pb2.AttachRequest],
                     context: object) -> AsyncIterator[container_pb2.AttachResponse]:
        """Only an exec's attached start (a host subprocess, its output when it ends)."""
        first = await anext(aiter(requests))
        self.fake.record("Attach", first)
        req = self.execs.pop(first.open.exec_id, None)
        if req is None:
            raise errdefs.NotFound(f"No such exec instance: {first.open.exec_id}")
        yield container_pb2.AttachResponse(started=container_pb2.AttachStarted(tty=req.tty))
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        env.update(e.partition("=")[::2] for e in req.env if "=" in e)
        try:
            proc = await asyncio.create_subprocess_exec(*req.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                        stderr=subprocess.PIPE, env=env)
        except FileNotFoundError:
            raise errdefs.InvalidArgument(f'exec: "{req.args[0]}": executable file not found in $PATH',
                                          reason=errdefs.REASON_EXEC_NOT_FOUND) from None
        out, err = await proc.communicate()
        for stream, data in (("stdout", out), ("stderr", err)):
            if data:
                yield container_pb2.AttachResponse(output=container_pb2.AttachOutput(stream=stream, data=data))
        yield container_pb2.AttachResponse(exit=container_pb2.AttachExit(exit_code=proc.returncode or 0))

    @server_stream
    def Stats(self, req: container_pb2.StatsRequest, ctx: Call) -> Iterator[container_pb2.StatsResponse]:
        c = self.fake.resolve(req.id)
        for n in range(1, 3 if req.stream else 2):
            yield container_pb2.StatsResponse(id=c.id, name="/" + c.name, memory_usage=1 << 20,
                                              memory_limit=1 << 30, cpu_usage_ns=n * 10**8,
                                              system_cpu_ns=n * 10**9, online_cpus=2, pids_current=1)
