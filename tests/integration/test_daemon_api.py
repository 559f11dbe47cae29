"""The daemon's gRPC API over a real grpc.aio unix socket, with fake images, layers, shims, network."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from ctrd import errdefs, errgrpc
from ctrd.v1 import container_pb2 as pb
from ctrd.v1 import container_pb2_grpc, system_pb2, system_pb2_grpc
from daemon.config import Config
from daemon.server import Daemon
from tests.daemon_fakes import FakeImages, FakeLayers, FakeNetwork, FakeShims

INSPECT_KEYS = {"Id", "Name", "Created", "Path", "Args", "State", "Image", "RestartCount", "Driver", "GraphDriver",
                "Mounts", "Config", "HostConfig", "NetworkSettings"}
STATE_KEYS = {"Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid", "ExitCode", "Error",
              "StartedAt", "FinishedAt"}


class Env:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.cfg = Config(root=base / "root", exec_root=base / "run", address=base / "run" / "api.sock",
                          cgroup_parent="ctrdt-int", stop_timeout=1)
        self.images = FakeImages()
        self.layers = FakeLayers(base / "layers")
        self.shims = FakeShims(self.cfg.exec_root)
        self.network = FakeNetwork(self.cfg.exec_root)
        self.daemon: Daemon | None = None
        self.channel: grpc.aio.Channel | None = None
        self.events: list[system_pb2.EventsResponse] = []
        self._arrived = asyncio.Event()
        self._collector: asyncio.Task[None] | None = None

    async def start(self) -> None:
        since = time.time()
        self.daemon = Daemon(self.cfg, self.images, self.layers, self.shims, self.network)
        await self.daemon.start()
        self.channel = grpc.aio.insecure_channel(f"unix:{self.cfg.address}")
        self.api = container_pb2_grpc.ContainerServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.sys = system_pb2_grpc.SystemServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.events = []
        # `since` replays from the daemon's buffer: no event is missed while the stream opens
        self._collector = asyncio.create_task(self._collect(since))

    async def _collect(self, since: float) -> None:
        try:
            async for ev in self.sys.Events(system_pb2.EventsRequest(since=since)):
                self.events.append(ev)
                self._arrived.set()
        except grpc.aio.AioRpcError:
            pass  # the channel closed: the daemon stops

    def actions(self, cid: str) -> list[str]:
        return [e.action for e in self.events if e.id == cid]

    async def event(self, cid: str, action: str, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until `action` has happened `count` times to `cid` (the daemon's own event stream)."""
        async def seen() -> None:
            while self.actions(cid).count(action) < count:
                self._arrived.clear()
                await self._arrived.wait()

        try:
            await asyncio.wait_for(seen(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {action} x{count} for {cid[:12]} within {timeout}s: {self.actions(cid)}")

    async def stop(self, live_restore: bool = False) -> None:
        assert self.daemon is not None and self.channel is not None
        if self._collector is not None:
            self._collector.cancel()
            await asyncio.gather(self._collector, return_exceptions=True)
        await self.channel.close()
        object.__setattr__(self.cfg, "live_restore", live_restore)
        await self.daemon.stop()
        self.daemon = None

    async def call(self, method: str, req: Any) -> Any:
        try:
            return await getattr(self.api, method)(req, timeout=20)
        except grpc.aio.AioRpcError as exc:
            raise errgrpc.to_native(exc) from None

    async def create(self, *cmd: str, **kw: Any) -> str:
        spec = pb.ContainerSpec(image="busybox", cmd=list(cmd), cmd_set=bool(cmd), network_mode="none", **kw)
        return str((await self.call("Create", pb.CreateRequest(spec=spec))).id)

    async def inspect(self, ref: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads((await self.call("Inspect", pb.InspectRequest(id=ref))).json)
        return out

    async def until(self, ref: str, pred: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        """Poll inspect until `pred` holds (a generous deadline: a loaded machine is slow, not wrong)."""
        deadline = time.monotonic() + timeout
        while not pred(info := await self.inspect(ref)):
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not reached: {info['State']}")
            await asyncio.sleep(0.02)
        return info

    async def fence(self, ref: str) -> None:
        """A request that queues on the container's lock behind whatever the daemon started after
        its last exit (a restart takes that lock first): after it, inspect shows the decision."""
        with pytest.raises(errdefs.FailedPrecondition):
            await self.call("Pause", pb.PauseRequest(id=ref))


def run(base: Path, body: Callable[[Env], Awaitable[None]]) -> None:
    async def main() -> None:
        env = Env(base)
        await env.start()
        try:
            await body(env)
        finally:
            if env.daemon is not None:
                await env.stop()

    asyncio.run(main())


def test_lifecycle_inspect_list_events(short_tmp: Path) -> None:
    async def body(env: Env) -> None:
        cid = await env.create("sleep", "100", name="web", labels={"tier": "front"})
        info = await env.inspect("web")
        assert set(info) >= INSPECT_KEYS and set(info["State"]) == STATE_KEYS
        assert info["Id"] == cid and info["Name"] == "/web" and info["State"]["Status"] == "created"
        assert info["Path"] == "sleep" and info["Args"] == ["100"] and info["Driver"] == "overlay2"
        assert set(info["GraphDriver"]["Data"]) == {"LowerDir", "UpperDir", "WorkDir", "MergedDir"}
        assert {"Hostname", "Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Image", "Labels", "StopSignal",
                "StopTimeout"} <= set(info["Config"])
        assert {"NetworkMode", "PortBindings", "Binds", "Memory", "NanoCpus", "PidsLimit", "RestartPolicy",
                "AutoRemove", "ReadonlyRootfs", "CapAdd", "CapDrop"} <= set(info["HostConfig"])
        assert {"SandboxKey", "IPAddress", "Gateway", "MacAddress", "Ports"} <= set(info["NetworkSettings"])
        assert (env.cfg.root / "containers" / cid / "config.v2.json").exists()
        assert env.layers.mounted == set()

        assert (await env.call("List", pb.ListRequest())).containers == []
        await env.call("Start", pb.StartRequest(id=cid[:8]))
        info = await env.inspect(cid)
        assert info["State"]["Running"] and info["State"]["Pid"] > 0
        assert env.layers.mounted == {cid} and cid in env.network.active
        spec = env.shims.created[-1][2]
        assert spec["process"]["args"] == ["sleep", "100"] and spec["linux"]["cgroupsPath"] == f"/ctrdt-int/{cid}"
        listed = (await env.call("List", pb.ListRequest(filters={"label": "tier=front"}))).containers
        assert [c.id for c in listed] == [cid] and listed[0].state == "running"
        assert listed[0].status.startswith("Up ")

        await env.call("Rename", pb.RenameRequest(id="web", name="web2"))  # the network learns the new name
        await env.call("Rename", pb.RenameRequest(id="web2", name="web"))
        assert env.network.renamed == [(cid, "web2"), (cid, "web")]
        await env.call("Pause", pb.PauseRequest(id="web"))
        assert (await env.inspect(cid))["State"]["Status"] == "paused"
        await env.call("Resume", pb.ResumeRequest(id="web"))
        await env.call("Stop", pb.StopRequest(id="web"))
        info = await env.inspect(cid)
        assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 143
        assert env.layers.mounted == set() and env.network.active == {}
        assert not env.shims.state_dir(cid).exists() and env.shims.shims[cid].gone
        assert (await env.call("Wait", pb.WaitRequest(id=cid))).exit_code == 143
        await env.call("Remove", pb.RemoveRequest(id=cid))
        assert not (env.cfg.root / "containers" / cid).exists() and cid not in env.layers.layers
        await env.event(cid, "destroy")
        assert env.actions(cid) == ["create", "start", "rename", "rename", "pause", "unpause", "kill", "die", "stop", "destroy"]
        die = next(e for e in env.events if e.action == "die")
        assert die.attributes["exitCode"] == "143" and die.attributes["name"] == "web"

    run(short_tmp, body)


def test_errors_cross_the_wire_with_codes_and_reasons(short_tmp: Path) -> None:
    async def body(env: Env) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await env.api.Inspect(pb.InspectRequest(id="nope"))
        assert raw.value.code() == grpc.StatusCode.NOT_FOUND and "no such container: nope" in str(raw.value.details())
        with pytest.raises(errdefs.InvalidArgument, match="name"):
            await env.create("true", name="bad name")
        with pytest.raises(errdefs.InvalidArgument, match="image"):
            await env.call("Create", pb.CreateRequest(spec=pb.ContainerSpec(image="missing")))
        cid = await env.create("sleep", "1")
        with pytest.raises(errdefs.AlreadyExists):
            await env.create("true", name=(await env.inspect(cid))["Name"][1:])
        await env.call("Start", pb.StartRequest(id=cid))
        with pytest.raises(errdefs.FailedPrecondition, match="is already running"):
            await env.call("Start", pb.StartRequest(id=cid))
        with pytest.raises(errdefs.FailedPrecondition, match="cannot remove running container"):
            await env.call("Remove", pb.RemoveRequest(id=cid))
        with pytest.raises(errdefs.InvalidArgument, match="filters"):
            await env.call("List", pb.ListRequest(filters={"colour": "red"}))
        with pytest.raises(errdefs.InvalidArgument, match="filters"):
            await env.call("List", pb.ListRequest(filters={"status": "sleeping"}))
        with pytest.raises(errdefs.InvalidArgument, match="timeout"):
            await env.call("Stop", pb.StopRequest(id=cid, timeout=-5))
        await env.call("Remove", pb.RemoveRequest(id=cid, force=True))
        # the exec error's reason travels in trailing metadata; the container ends exited 127
        bad = await env.create("nosuchcmd")
        with pytest.raises(errdefs.InvalidArgument) as exc:
            await env.call("Start", pb.StartRequest(id=bad))
        assert exc.value.reason == errdefs.REASON_EXEC_NOT_FOUND
        info = await env.inspect(bad)
        assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 127 and info["State"]["Error"]
        assert env.layers.mounted == set() and env.network.active == {}
        # a failing network undoes the mount and leaves the container as it was
        env.network.fail_setup = True
        other = await env.create("sleep", "1")
        with pytest.raises(errdefs.Internal, match="network"):
            await env.call("Start", pb.StartRequest(id=other))
        assert (await env.inspect(other))["State"]["Status"] == "created" and env.layers.mounted == set()

    run(short_tmp, body)


def test_restart_policies_and_auto_remove(short_tmp: Path) -> None:
    async def body(env: Env) -> None:
        onf = await env.create("exit", "1", restart_policy=pb.RestartPolicy(name="on-failure", maximum_retry_count=2))
        await env.call("Start", pb.StartRequest(id=onf))
        await env.event(onf, "die", count=3)  # the first run and its two restarts
        await env.fence(onf)
        info = await env.inspect(onf)
        assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 1
        assert info["RestartCount"] == 2 and env.actions(onf).count("restart") == 2  # no third restart

        always = await env.create("exit", "0", restart_policy=pb.RestartPolicy(name="always"))
        await env.call("Start", pb.StartRequest(id=always))
        await env.event(always, "restart", count=2)
        await env.call("Stop", pb.StopRequest(id=always))  # an explicit stop is never undone
        count = (await env.inspect(always))["RestartCount"]
        await env.fence(always)
        info = await env.inspect(always)
        assert info["State"]["Status"] == "exited" and info["RestartCount"] == count

        rm = await env.create("exit", "4", auto_remove=True)
        await env.call("Start", pb.StartRequest(id=rm))
        assert (await env.call("Wait", pb.WaitRequest(id=rm))).exit_code == 4
        await env.event(rm, "destroy")
        assert rm not in env.layers.layers
        # only the rootfs of a container removed at its exit is mounted `volatile`
        assert rm in env.layers.volatile and not {onf, always} & env.layers.volatile
        with pytest.raises(errdefs.NotFound):
            await env.inspect(rm)

    run(short_tmp, body)


def test_killed_shim_and_concurrent_operations(short_tmp: Path) -> None:
    async def body(env: Env) -> None:
        cid = await env.create("sleep", "100")
        await env.call("Start", pb.StartRequest(id=cid))
        env.shims.kill_shim(cid)
        info = await env.until(cid, lambda i: i["State"]["Status"] == "exited")
        assert info["State"]["ExitCode"] == 255 and cid in env.shims.cleanups
        assert env.layers.mounted == set() and env.network.active == {}
        await env.call("Start", pb.StartRequest(id=cid))  # it can be started again

        async def attempt(method: str, req: Any) -> str:
            try:
                await env.call(method, req)
                return "ok"
            except errdefs.CtrdError as exc:
                return type(exc).__name__

        ops = [attempt("Stop", pb.StopRequest(id=cid)) if i % 2 else attempt("Start", pb.StartRequest(id=cid))
               for i in range(20)]
        results = await asyncio.gather(*ops)
        assert set(results) <= {"ok", "FailedPrecondition"}
        info = await env.inspect(cid)
        running = info["State"]["Status"] == "running"
        assert env.layers.mounted == ({cid} if running else set())
        assert (cid in env.network.active) == running

        many = [await env.create("sleep", "100") for _ in range(10)]
        await asyncio.gather(*(env.call("Start", pb.StartRequest(id=c)) for c in many))
        await asyncio.gather(*(env.call("Remove", pb.RemoveRequest(id=c, force=True)) for c in many))
        assert env.layers.layers == {cid}

    run(short_tmp, body)


def test_recovery_reattaches_live_and_collects_dead(short_tmp: Path) -> None:
    async def body(env: Env) -> None:
        live = await env.create("sleep", "100")
        dead = await env.create("sleep", "100")
        policy = await env.create("sleep", "100", restart_policy=pb.RestartPolicy(name="always"))
        for c in (live, dead, policy):
            await env.call("Start", pb.StartRequest(id=c))
        pid = (await env.inspect(live))["State"]["Pid"]
        await env.stop(live_restore=True)
        env.shims.kill_shim(dead)
        env.shims.kill_shim(policy)
        await env.start()
        info = await env.inspect(live)
        assert info["State"]["Status"] == "running" and info["State"]["Pid"] == pid
        assert env.network.recovered is not None and live in env.network.recovered
        d = await env.inspect(dead)
        assert d["State"]["Status"] == "exited" and d["State"]["ExitCode"] == 255
        await env.until(policy, lambda i: i["State"]["Status"] == "running" and i["RestartCount"] == 1)
        await env.call("Stop", pb.StopRequest(id=live))
        assert (await env.inspect(live))["State"]["Status"] == "exited"

    run(short_tmp, body)


def test_logs_stream(short_tmp: Path) -> None:
    async def body(env: Env) -> None:
        cid = await env.create("exit", "0")
        log = Path((await env.inspect(cid))["LogPath"])
        log.write_text('{"log":"hi\\n","stream":"stdout","time":"2026-01-01T00:00:00.000000001Z"}\n'
                       '{"log":"oops\\n","stream":"stderr","time":"2026-01-01T00:00:01.000000001Z"}\n')
        got: AsyncIterator[Any] = env.api.Logs(pb.LogsRequest(id=cid, tail=-1))
        items = [(m.stream, m.data) async for m in got]
        assert items == [("stdout", b"hi\n"), ("stderr", b"oops\n")]
        got = env.api.Logs(pb.LogsRequest(id=cid, tail=1, stdout=True))
        assert [m.data async for m in got] == [b"hi\n"]

    run(short_tmp, body)


def test_attach_and_resize_refusals_and_the_stored_config(short_tmp: Path) -> None:
    async def attach_error(env: Env, *reqs: pb.AttachRequest) -> grpc.aio.AioRpcError:
        async def gen() -> AsyncIterator[pb.AttachRequest]:
            for r in reqs:
                yield r

        with pytest.raises(grpc.aio.AioRpcError) as exc:
            async for _ in env.api.Attach(gen(), timeout=20):
                pass
        return exc.value

    async def body(env: Env) -> None:
        with pytest.raises(errdefs.InvalidArgument, match="stdin_once"):
            await env.create("sh", stdin_once=True)
        for rows, cols in ((0, 80), (24, 0), (10001, 80)):
            with pytest.raises(errdefs.InvalidArgument, match="console_size"):
                await env.create("sh", tty=True, console_rows=rows, console_cols=cols)
        cid = await env.create("sh", tty=True, open_stdin=True, stdin_once=True, console_rows=40, console_cols=120)
        info = await env.inspect(cid)
        cfg = info["Config"]
        assert (cfg["Tty"], cfg["OpenStdin"], cfg["StdinOnce"], cfg["AttachStdin"]) == (True, True, True, True)
        assert info["HostConfig"]["ConsoleSize"] == [40, 120]
        err = await attach_error(env, pb.AttachRequest(open=pb.AttachOpen(id="nope", stdout=True)))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        err = await attach_error(env, pb.AttachRequest(stdin=b"x"))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "open" in str(err.details())
        err = await attach_error(env, pb.AttachRequest(open=pb.AttachOpen(id=cid, detach_keys="ctrl-1")))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "detach-keys" in str(err.details())
        await env.call("Start", pb.StartRequest(id=cid))
        await env.call("Resize", pb.ResizeRequest(id=cid, rows=50, cols=132))
        assert env.shims.shims[cid].size == (50, 132)
        for rows, cols in ((0, 80), (24, 0), (10001, 80)):
            with pytest.raises(errdefs.InvalidArgument, match="size"):
                await env.call("Resize", pb.ResizeRequest(id=cid, rows=rows, cols=cols))
        await env.call("Pause", pb.PauseRequest(id=cid))
        err = await attach_error(env, pb.AttachRequest(open=pb.AttachOpen(id=cid, stdout=True)))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "paused" in str(err.details())
        await env.call("Resume", pb.ResumeRequest(id=cid))
        await env.call("Remove", pb.RemoveRequest(id=cid, force=True))
        plain = await env.create("sleep", "1")
        await env.call("Start", pb.StartRequest(id=plain))
        with pytest.raises(errdefs.FailedPrecondition, match="terminal"):
            await env.call("Resize", pb.ResizeRequest(id=plain, rows=24, cols=80))
        await env.call("Remove", pb.RemoveRequest(id=plain, force=True))

    run(short_tmp, body)


@pytest.mark.parametrize("guess_holds", [True, False])
def test_the_bundle_written_during_the_mount_and_network_has_their_real_paths(
        short_tmp: Path, monkeypatch: pytest.MonkeyPatch, guess_holds: bool) -> None:
    """A start writes the bundle while it mounts the rootfs and sets up the network, from the
    paths it expects them to have; a wrong guess is written again with the real ones."""
    from daemon.containers import start as start_mod

    builds: list[str] = []
    real = start_mod._build_and_write

    def counted(c: Any, rootfs: Path, files: dict[str, str], sandbox: str, *rest: Any) -> None:
        builds.append(sandbox)
        real(c, rootfs, files, sandbox, *rest)

    monkeypatch.setattr(start_mod, "_build_and_write", counted)

    async def body(env: Env) -> None:
        if not guess_holds:
            env.network.expect = lambda cid, d, req: ("/wrong/netns", {"/etc/hosts": "/wrong/hosts"})
        cid = await env.create("sleep", "100")
        await env.call("Start", pb.StartRequest(id=cid))
        spec = env.shims.created[-1][2]
        key = str(env.cfg.exec_root / "netns" / cid[:12])
        assert {"type": "network", "path": key} in spec["linux"]["namespaces"]
        hosts = next(m for m in spec["mounts"] if m["destination"] == "/etc/hosts")
        assert hosts["source"] == str(env.cfg.root / "containers" / cid / "hosts")
        assert spec["root"]["path"] == str(env.layers.merged_dir(cid))
        assert builds == ([key] if guess_holds else ["/wrong/netns", key])
        await env.call("Kill", pb.KillRequest(id=cid, signal="KILL"))

    run(short_tmp, body)
