"""A fake ctrd for ctrctl's integration tests: a small in-memory gRPC server on a unix socket.

Not a copy of the daemon: a "container" is a plain host subprocess (no isolation) whose stdout and
stderr are captured into an in-memory log, so `ctrctl run` can be exercised end to end (log
streaming, signals, exit codes) without root. Every request is recorded in `calls` so tests can
assert what the CLI sent (or that it sent nothing). Errors reach the CLI the way ctrd sends them:
the services raise ctrd.errdefs errors and the daemon's own wire mapping (daemon.wiremap) maps them.

    ctrctl_fake.py             the state, the "runtime", the server
    ctrctl_fake_containers.py  ContainerService          ctrctl_fake_images.py  Image and System
    ctrctl_fake_wire.py        threaded handlers served by grpc.aio with the daemon's wire mapping
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import grpc.aio

from ctrd import errdefs
from ctrd.v1 import container_pb2, container_pb2_grpc, image_pb2_grpc, system_pb2, system_pb2_grpc
from daemon.containers.state import Status
from daemon.containers.view import status_text
from daemon.wiremap import registrar

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


class FakeDaemon:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.lock = threading.Condition()
        self.containers: dict[str, FakeContainer] = {}
        self.images: dict[str, list[str]] = {BUSYBOX_ID: ["busybox:latest"]}
        self.events: list[system_pb2.EventsResponse] = []
        self.calls: list[tuple[str, Any]] = []
        self.subscriptions = 0  # Events streams that have taken their starting point
        self.followers = 0  # Logs(follow) streams that have taken theirs
        # When set, Logs(follow) on a container that is not running ends at once (tests re-follow).
        self.end_follow_unless_running = False
        # handlers block (locks, subprocesses, follow loops): each RPC step runs in this pool
        self.pool = futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="fake-ctrd")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-ctrd-loop", daemon=True)
        self._server: grpc.aio.Server | None = None

    async def _serve(self) -> None:
        from tests.integration.ctrctl_fake_containers import Containers
        from tests.integration.ctrctl_fake_images import Images, System

        server = grpc.aio.server()
        mapped = registrar(server)
        container_pb2_grpc.add_ContainerServiceServicer_to_server(Containers(self), mapped)
        image_pb2_grpc.add_ImageServiceServicer_to_server(Images(self), mapped)
        system_pb2_grpc.add_SystemServiceServicer_to_server(System(self), mapped)
        server.add_insecure_port("unix:" + self.socket_path)
        await server.start()
        self._server = server

    def start(self) -> FakeDaemon:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._server is not None:  # ends every call: the following handlers return
            asyncio.run_coroutine_threadsafe(self._server.stop(0), self._loop).result(10)
        for c in list(self.containers.values()):  # a handler may be waiting for one to exit
            if c.proc is not None and c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait()
        self.pool.shutdown(wait=True, cancel_futures=True)  # the loop still runs to take their results
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def record(self, method: str, request: Any) -> None:
        with self.lock:
            self.calls.append((method, request))

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Block until `predicate` (read under the lock) holds; every state change notifies."""
        with self.lock:
            if not self.lock.wait_for(predicate, timeout):
                raise AssertionError(f"fake daemon: {what} did not happen within {timeout}s")

    def logged(self, name: str, line: bytes) -> bool:
        return any(data == line for c in self.containers.values() if c.name == name for _s, data, _t, _w in c.logs)

    def happened(self, action: str, name: str) -> bool:
        return any(e.action == action and e.attributes["name"] == name for e in self.events)

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
        # the daemon's own STATUS wording, from the fields it reads
        state = SimpleNamespace(status=Status(c.state), started_at=c.started, finished_at=c.finished,
                                exit_code=c.exit_code, health=None)
        out = container_pb2.ContainerSummary(
            id=c.id, names=["/" + c.name], image=c.spec.image, created=int(c.created), state=c.state,
            command=" ".join(list(c.spec.cmd) or ["sh"]), status=status_text(SimpleNamespace(state=state)))
        out.labels.update(c.spec.labels)
        for p in c.spec.port_bindings:
            out.ports.add(ip=p.host_ip or "0.0.0.0", public_port=p.host_port, private_port=p.container_port,
                          type=p.protocol or "tcp")
        return out
