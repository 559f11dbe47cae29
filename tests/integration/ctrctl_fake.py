"""A fake ctrd for ctrctl's integration tests: a small in-memory sync gRPC server on a unix socket.

Not a copy of the daemon: a "container" is a plain host subprocess (no isolation) whose stdout and
stderr are captured into an in-memory log, so `ctrctl run` can be exercised end to end (log
streaming, signals, exit codes) without root. Every request is recorded in `calls` so tests can
assert what the CLI sent (or that it sent nothing).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc

from ctrd import errdefs, errgrpc
from ctrd.v1 import (
    container_pb2,
    container_pb2_grpc,
    image_pb2,
    image_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
)

BUSYBOX_ID = "sha256:" + "b" * 64


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


@dataclass
class FakeContainer:
    id: str
    name: str
    spec: container_pb2.ContainerSpec
    created: float
    state: str = "created"
    exit_code: int = 0
    started: float = 0.0
    finished: float = 0.0
    proc: subprocess.Popen[bytes] | None = None
    logs: list[tuple[str, bytes, str, float]] = field(default_factory=list)
    output_done: bool = False


def _wire(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Errors to status codes with errgrpc, like the daemon's interceptor."""

    def wrapped(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        self.fake.record(fn.__name__, request)
        try:
            return fn(self, request, context)
        except errdefs.CtrdError as exc:
            code, details, meta = errgrpc.to_status(exc)
            if meta:
                context.set_trailing_metadata(meta)
            context.abort(code, details)

    wrapped.__name__ = fn.__name__
    return wrapped


def _wire_stream(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    def wrapped(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        self.fake.record(fn.__name__, request)
        try:
            yield from fn(self, request, context)
        except errdefs.CtrdError as exc:
            code, details, meta = errgrpc.to_status(exc)
            if meta:
                context.set_trailing_metadata(meta)
            context.abort(code, details)

    wrapped.__name__ = fn.__name__
    return wrapped


class FakeDaemon:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.lock = threading.Condition()
        self.containers: dict[str, FakeContainer] = {}
        self.images: dict[str, list[str]] = {BUSYBOX_ID: ["busybox:latest"]}
        self.events: list[system_pb2.EventsResponse] = []
        self.calls: list[tuple[str, Any]] = []
        # When set, Logs(follow) on a container that is not running ends at once (tests re-follow).
        self.end_follow_unless_running = False
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
        container_pb2_grpc.add_ContainerServiceServicer_to_server(_Containers(self), self.server)
        image_pb2_grpc.add_ImageServiceServicer_to_server(_Images(self), self.server)
        system_pb2_grpc.add_SystemServiceServicer_to_server(_System(self), self.server)
        self.server.add_insecure_port("unix:" + socket_path)

    def start(self) -> FakeDaemon:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(0).wait(5)
        for c in list(self.containers.values()):
            if c.proc is not None and c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait()

    def record(self, method: str, request: Any) -> None:
        with self.lock:
            self.calls.append((method, request))

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    def emit(self, action: str, c: FakeContainer, **attrs: str) -> None:
        ev = system_pb2.EventsResponse(type="container", action=action, id=c.id, time_nano=time.time_ns())
        ev.attributes.update({"name": c.name, "image": c.spec.image, **attrs})
        with self.lock:
            self.events.append(ev)
            self.lock.notify_all()

    def resolve(self, ref: str) -> FakeContainer:
        with self.lock:
            if ref in self.containers:
                return self.containers[ref]
            for c in self.containers.values():
                if c.name == ref.removeprefix("/"):
                    return c
            hits = [c for c in self.containers.values() if c.id.startswith(ref)] if ref else []
        if len(hits) > 1:
            raise errdefs.InvalidArgument(f"multiple containers match prefix {ref}")
        if not hits:
            raise errdefs.NotFound(f"no such container: {ref}")
        return hits[0]

    # --- the "runtime": a host subprocess --------------------------------------------------
    def run(self, c: FakeContainer) -> None:
        argv = list(c.spec.entrypoint if c.spec.entrypoint_set else []) + list(c.spec.cmd if c.spec.cmd_set else ["sh"])
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        env.update(e.split("=", 1) for e in c.spec.env if "=" in e)
        try:
            c.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                      env=env, start_new_session=True)
        except FileNotFoundError:
            self._exited(c, 127)
            raise errdefs.InvalidArgument(f'exec: "{argv[0]}": executable file not found in $PATH',
                                          reason=errdefs.REASON_EXEC_NOT_FOUND)
        except PermissionError:
            self._exited(c, 126)
            raise errdefs.InvalidArgument(f'exec: "{argv[0]}": permission denied',
                                          reason=errdefs.REASON_EXEC_NOT_INVOKABLE)
        c.state, c.started = "running", time.time()
        self.emit("start", c)
        readers = [threading.Thread(target=self._read, args=(c, c.proc.stdout, "stdout"), daemon=True),
                   threading.Thread(target=self._read, args=(c, c.proc.stderr, "stderr"), daemon=True)]
        for t in readers:
            t.start()
        threading.Thread(target=self._reap, args=(c, readers), daemon=True).start()

    def _read(self, c: FakeContainer, pipe: Any, stream: str) -> None:
        for line in iter(pipe.readline, b""):
            now = time.time()
            with self.lock:
                c.logs.append((stream, line, _rfc3339(now), now))
                self.lock.notify_all()
        pipe.close()

    def _reap(self, c: FakeContainer, readers: list[threading.Thread]) -> None:
        assert c.proc is not None
        code = c.proc.wait()
        for t in readers:
            t.join()
        self._exited(c, 128 - code if code < 0 else code)

    def _exited(self, c: FakeContainer, code: int) -> None:
        with self.lock:
            c.state, c.exit_code, c.finished, c.output_done = "exited", code, time.time(), True
            self.lock.notify_all()
        self.emit("die", c, exitCode=str(code))
        if c.spec.auto_remove:
            with self.lock:
                self.containers.pop(c.id, None)
            self.emit("destroy", c)

    def inspect_json(self, c: FakeContainer) -> str:
        s = c.spec
        return json.dumps({
            "Id": c.id, "Name": "/" + c.name, "Created": _rfc3339(c.created), "Path": (list(s.cmd) or ["sh"])[0],
            "Args": list(s.cmd)[1:], "Image": BUSYBOX_ID, "RestartCount": 0, "Driver": "overlay2",
            "State": {"Status": c.state, "Running": c.state == "running", "Paused": c.state == "paused",
                      "Restarting": False, "OOMKilled": False, "Dead": False,
                      "Pid": c.proc.pid if c.proc and c.state == "running" else 0, "ExitCode": c.exit_code,
                      "Error": "", "StartedAt": _rfc3339(c.started), "FinishedAt": _rfc3339(c.finished)},
            "Config": {"Hostname": s.hostname or c.id[:12], "Env": list(s.env), "Cmd": list(s.cmd),
                       "Image": s.image, "Labels": dict(s.labels), "WorkingDir": s.working_dir, "User": s.user},
            "HostConfig": {"Memory": s.memory, "NanoCpus": s.nano_cpus, "AutoRemove": s.auto_remove,
                           "NetworkMode": s.network_mode or "bridge"},
        })

    def summary(self, c: FakeContainer) -> container_pb2.ContainerSummary:
        from ctrctl.format import status_text

        out = container_pb2.ContainerSummary(
            id=c.id, names=["/" + c.name], image=c.spec.image, created=int(c.created), state=c.state,
            command=" ".join(list(c.spec.cmd) or ["sh"]),
            status=status_text(c.state, c.exit_code, c.started, c.finished))
        out.labels.update(c.spec.labels)
        for p in c.spec.port_bindings:
            out.ports.add(ip=p.host_ip or "0.0.0.0", public_port=p.host_port, private_port=p.container_port,
                          type=p.protocol or "tcp")
        return out


class _Containers(container_pb2_grpc.ContainerServiceServicer):
    def __init__(self, fake: FakeDaemon) -> None:
        self.fake = fake

    @_wire
    def Create(self, req: container_pb2.CreateRequest, ctx: Any) -> container_pb2.CreateResponse:
        f, spec = self.fake, req.spec
        if not any(spec.image in ([*tags, i, i[7:19]]) or spec.image + ":latest" in tags
                   for i, tags in f.images.items()):
            raise errdefs.NotFound(f"no such image: {spec.image}")
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

    @_wire
    def Start(self, req: container_pb2.StartRequest, ctx: Any) -> container_pb2.StartResponse:
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

    @_wire
    def Kill(self, req: container_pb2.KillRequest, ctx: Any) -> container_pb2.KillResponse:
        c = self.fake.resolve(req.id)
        self._signal(c, req.signal or "SIGKILL")
        self.fake.emit("kill", c, signal=req.signal or "SIGKILL")
        return container_pb2.KillResponse()

    @_wire
    def Stop(self, req: container_pb2.StopRequest, ctx: Any) -> container_pb2.StopResponse:
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

    @_wire
    def Remove(self, req: container_pb2.RemoveRequest, ctx: Any) -> container_pb2.RemoveResponse:
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

    @_wire
    def Inspect(self, req: container_pb2.InspectRequest, ctx: Any) -> container_pb2.InspectResponse:
        return container_pb2.InspectResponse(json=self.fake.inspect_json(self.fake.resolve(req.id)))

    @_wire
    def List(self, req: container_pb2.ListRequest, ctx: Any) -> container_pb2.ListResponse:
        with self.fake.lock:
            cs = [c for c in self.fake.containers.values() if req.all or c.state == "running"]
        return container_pb2.ListResponse(containers=[self.fake.summary(c) for c in cs])

    @_wire
    def Wait(self, req: container_pb2.WaitRequest, ctx: Any) -> container_pb2.WaitResponse:
        c = self.fake.resolve(req.id)
        with self.fake.lock:
            while c.state != "exited" and ctx.is_active():
                self.fake.lock.wait(0.5)
        return container_pb2.WaitResponse(exit_code=c.exit_code)

    @_wire_stream
    def Logs(self, req: container_pb2.LogsRequest, ctx: Any) -> Iterator[container_pb2.LogsResponse]:
        f = self.fake
        c = f.resolve(req.id)
        i = 0 if req.tail < 0 else max(0, len(c.logs) - req.tail)
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

    @_wire
    def Top(self, req: container_pb2.TopRequest, ctx: Any) -> container_pb2.TopResponse:
        c = self.fake.resolve(req.id)
        if c.state != "running" or c.proc is None:
            raise errdefs.FailedPrecondition(f"container {c.id} is not running")
        resp = container_pb2.TopResponse(titles=["PID", "CMD"])
        resp.processes.add(values=[str(c.proc.pid), " ".join(c.proc.args)])  # type: ignore[arg-type]
        return resp

    @_wire
    def Exec(self, req: container_pb2.ExecRequest, ctx: Any) -> container_pb2.ExecResponse:
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

    @_wire_stream
    def Stats(self, req: container_pb2.StatsRequest, ctx: Any) -> Iterator[container_pb2.StatsResponse]:
        c = self.fake.resolve(req.id)
        for n in range(1, 3 if req.stream else 2):
            yield container_pb2.StatsResponse(id=c.id, name="/" + c.name, memory_usage=1 << 20,
                                              memory_limit=1 << 30, cpu_usage_ns=n * 10**8,
                                              system_cpu_ns=n * 10**9, online_cpus=2, pids_current=1)


class _Images(image_pb2_grpc.ImageServiceServicer):
    def __init__(self, fake: FakeDaemon) -> None:
        self.fake = fake

    def _find(self, ref: str) -> str:
        for ident, tags in self.fake.images.items():
            if ref in tags or ref + ":latest" in tags or ident.removeprefix("sha256:").startswith(ref.removeprefix("sha256:")):
                return ident
        raise errdefs.NotFound(f"no such image: {ref}")

    @_wire
    def Import(self, reqs: Iterator[image_pb2.ImportRequest], ctx: Any) -> image_pb2.ImportResponse:
        header, size = None, 0
        for r in reqs:
            if r.HasField("header"):
                header = r.header
            else:
                size += len(r.chunk)
        ident = "sha256:" + secrets.token_hex(32)
        ref = header.reference if header else ""
        self.fake.images[ident] = [ref if ":" in ref else ref + ":latest"] if ref else []
        self.fake.record("ImportBytes", size)
        return image_pb2.ImportResponse(id=ident)

    @_wire
    def Load(self, reqs: Iterator[image_pb2.LoadRequest], ctx: Any) -> image_pb2.LoadResponse:
        size = sum(len(r.chunk) for r in reqs)
        if size == 0:
            raise errdefs.InvalidArgument("archive: empty input")
        ident = "sha256:" + secrets.token_hex(32)
        self.fake.images[ident] = ["loaded:latest"]
        self.fake.record("LoadBytes", size)
        return image_pb2.LoadResponse(loaded=["Loaded image: loaded:latest"])

    @_wire
    def List(self, req: image_pb2.ImageListRequest, ctx: Any) -> image_pb2.ImageListResponse:
        return image_pb2.ImageListResponse(images=[
            image_pb2.ImageSummary(id=i, repo_tags=t, created=int(time.time()) - 3600, size=4_260_000)
            for i, t in self.fake.images.items()])

    @_wire
    def Inspect(self, req: image_pb2.ImageInspectRequest, ctx: Any) -> image_pb2.ImageInspectResponse:
        ident = self._find(req.reference)
        return image_pb2.ImageInspectResponse(json=json.dumps({"Id": ident, "RepoTags": self.fake.images[ident]}))

    @_wire
    def Remove(self, req: image_pb2.ImageRemoveRequest, ctx: Any) -> image_pb2.ImageRemoveResponse:
        ident = self._find(req.reference)
        tags = self.fake.images.pop(ident)
        return image_pb2.ImageRemoveResponse(untagged=tags, deleted=[ident])


class _System(system_pb2_grpc.SystemServiceServicer):
    def __init__(self, fake: FakeDaemon) -> None:
        self.fake = fake

    @_wire
    def Version(self, req: system_pb2.VersionRequest, ctx: Any) -> system_pb2.VersionResponse:
        return system_pb2.VersionResponse(version="0.0-fake", api_version="1", python_version="3", os="linux",
                                          arch="x86_64", kernel_version="6", runtime="fake")

    @_wire
    def Info(self, req: system_pb2.InfoRequest, ctx: Any) -> system_pb2.InfoResponse:
        n = len(self.fake.containers)
        return system_pb2.InfoResponse(json=json.dumps({"Containers": n, "ContainersRunning": 0, "Images": 1,
                                                        "Driver": "overlay2", "FakeKey": True}))

    @_wire_stream
    def Events(self, req: system_pb2.EventsRequest, ctx: Any) -> Iterator[system_pb2.EventsResponse]:
        f = self.fake
        with f.lock:
            i = 0 if req.since else len(f.events)
        while ctx.is_active():
            with f.lock:
                batch, i = f.events[i:], len(f.events)
            for ev in batch:
                if req.since and ev.time_nano < req.since * 1e9:
                    continue
                if req.until and ev.time_nano > req.until * 1e9:
                    return
                yield ev
            if req.until and time.time() > req.until:
                return
            with f.lock:
                f.lock.wait(0.2)
