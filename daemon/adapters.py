"""Adapters from the collaborators' real APIs to the daemon's seams (daemon/seams.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ctrd import errdefs
from ctrd.shim.v1 import shim_pb2
from daemon.config import Config
from daemon.network.client import HelperClient
from daemon.network.files import write_container_files
from daemon.network.firewall import Firewall
from daemon.network.manager import NetworkManager
from daemon.network.settings import NetworkSettings, PortMapping
from daemon.network.usernets import DNS_SERVER, UserNetworks
from daemon.seams import ExecResult, Exit, NetRequest, NetResult, ShimCreate, ShimState, Stats
from shimd.client import ShimClient
from shimd.launcher import ShimLauncher

CLEANUP_TIMEOUT = 30.0
RECONNECT_TIMEOUT = 5.0  # containerd's shim load budget
SHIM_EXIT_TIMEOUT = 3.0  # after its Shutdown answer, a shim exits once in-flight calls end (2 s bound)
_STATUS = {
    shim_pb2.STATUS_CREATED: "created",
    shim_pb2.STATUS_RUNNING: "running",
    shim_pb2.STATUS_PAUSED: "paused",
    shim_pb2.STATUS_STOPPED: "stopped",
}


class ShimConn:
    """One connected shim, speaking the daemon's ShimTask protocol."""

    def __init__(self, client: ShimClient, shim_pid: int) -> None:
        self.client = client
        self._pid = shim_pid

    @property
    def shim_pid(self) -> int:
        return self._pid

    async def create(self, req: ShimCreate) -> int:
        ports = [shim_pb2.PortForward(**{k: v for k, v in p.items()}) for p in req.ports]
        r = await self.client.create(
            shim_pb2.CreateRequest(
                id=Path(req.bundle).name, bundle=req.bundle, runtime=req.runtime, runtime_root=req.runtime_root,
                log_path=req.log_path, log_max_size=req.log_max_size, log_max_file=req.log_max_file, ports=ports,
            )
        )
        return int(r.pid)

    async def start(self) -> int:
        return int((await self.client.start()).pid)

    async def state(self) -> ShimState:
        r = await self.client.state()
        status = _STATUS.get(r.status, "unknown")
        ex = Exit(int(r.exit_status), float(r.exited_at), bool(r.oom_killed)) if status == "stopped" else None
        return ShimState(status, int(r.pid), ex)

    async def kill(self, sig: int, all_: bool = False) -> None:
        await self.client.kill(sig, all_)

    async def stop(self, sig: int, timeout_ms: int) -> Exit:
        r = await self.client.stop(sig, timeout_ms)
        return Exit(int(r.exit_status), float(r.exited_at), killed=bool(r.killed))

    async def wait(self) -> Exit:
        r = await self.client.wait()
        return Exit(int(r.exit_status), float(r.exited_at), bool(r.oom_killed))

    async def pause(self) -> None:
        await self.client.pause()

    async def resume(self) -> None:
        await self.client.resume()

    async def exec(self, args: Sequence[str], env: Sequence[str], cwd: str, uid: int, gid: int) -> ExecResult:
        r = await self.client.exec(shim_pb2.ExecRequest(args=list(args), env=list(env), cwd=cwd, uid=uid, gid=gid))
        return ExecResult(int(r.exit_status), bytes(r.stdout), bytes(r.stderr))

    async def stats(self) -> Stats:
        r = await self.client.stats()
        return Stats(int(r.memory_usage), int(r.memory_limit), int(r.cpu_usage_ns), int(r.pids_current), int(r.pids_limit))

    async def pids(self) -> list[int]:
        return [int(p) for p in (await self.client.pids()).pids]

    async def delete(self) -> Exit:
        r = await self.client.delete()
        return Exit(int(r.exit_status), float(r.exited_at))

    async def shutdown(self) -> None:
        """Shutdown, and return once the shim process is gone: after its answer it still removes
        its socket, pid and log files by name, which must not race a next shim of the same
        container in the same state dir."""
        pidfd = _pidfd(self._pid)
        try:
            await self.client.shutdown()
            if pidfd >= 0:
                await _readable(pidfd, SHIM_EXIT_TIMEOUT)
        finally:
            if pidfd >= 0:
                os.close(pidfd)

    async def close(self) -> None:
        await self.client.close()


def _pidfd(pid: int) -> int:
    """A pidfd for a live ctrd-shim `pid` (-1 when it is not one, or already gone)."""
    if pid <= 0:
        return -1
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return -1
    try:  # checked after the open: the pidfd pins the process, so the name is its own
        with open(f"/proc/{pid}/comm", "rb") as f:
            if f.read().strip() == b"ctrd-shim":
                return fd
    except OSError:
        pass
    os.close(fd)
    return -1


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _readable(fd: int, timeout: float) -> None:
    """Wait (bounded) until a pidfd reports its process has exited."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, _wake, done)
    try:
        await asyncio.wait_for(done, timeout)
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(fd)


class RealShims:
    def __init__(self, exec_root: Path) -> None:
        self.exec_root = Path(exec_root)
        self.launcher = ShimLauncher(self.exec_root)
        self._ready: asyncio.Future[None] | None = None

    async def start(self) -> None:
        (self.exec_root / "shims").mkdir(parents=True, exist_ok=True, mode=0o700)
        # the daemon starts the launcher while it recovers: a launch asked for meanwhile (a
        # restart policy) waits for it instead of racing its "ready" line on the same pipe
        self._ready = asyncio.ensure_future(self.launcher.start())
        await asyncio.shield(self._ready)

    async def close(self) -> None:
        await self.launcher.close()

    def state_dir(self, container_id: str) -> Path:
        return self.exec_root / "shims" / container_id

    async def launch(self, container_id: str) -> ShimConn:
        if self._ready is not None and not self._ready.done():
            with contextlib.suppress(Exception):  # a launcher that failed: launch falls back to exec
                await asyncio.shield(self._ready)
        h = await self.launcher.launch(container_id)
        client = await ShimClient.connect(h.address)
        return ShimConn(client, h.pid)

    async def reconnect(self, container_id: str) -> ShimConn:
        sock = self.state_dir(container_id) / "shim.sock"
        if not sock.exists():
            raise errdefs.Unavailable(f"container {container_id}: no shim socket")
        client = await ShimClient.connect(f"unix://{sock}")
        try:
            info = await asyncio.wait_for(client.connect(), RECONNECT_TIMEOUT)
        except (errdefs.CtrdError, TimeoutError) as exc:
            await client.close()
            raise errdefs.Unavailable(f"container {container_id}: shim does not answer: {exc}") from exc
        return ShimConn(client, int(info.shim_pid))

    async def cleanup_dead(self, container_id: str) -> Exit:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shimd.main", "delete", "--id", container_id, "--exec-root", str(self.exec_root),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), CLEANUP_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise errdefs.Internal(f"ctrd-shim delete {container_id}: timed out")
        if proc.returncode != 0:
            raise errdefs.Internal(f"ctrd-shim delete {container_id}: {err.decode(errors='replace').strip()}")
        try:
            d = json.loads(out)
            return Exit(int(d.get("exit_status", 255)), float(d.get("exited_at") or time.time()))
        finally:
            shutil.rmtree(self.state_dir(container_id), ignore_errors=True)


class RealNetwork:
    """The default bridge's NetworkManager and the user-defined networks (one helper process for
    all), plus the hostname/hosts/resolv.conf files bound over the init layer."""

    BUILTIN_MODES = ("none", "host", "bridge")

    def __init__(self, cfg: Config) -> None:
        firewall = Firewall() if cfg.iptables else None
        ops = HelperClient()
        self.manager = NetworkManager(
            cfg.root, cfg.exec_root, cfg.bridge, cfg.subnet, nat=cfg.ip_masq, ip_forward=cfg.ip_forward,
            firewall=firewall, ops=ops,
        )
        self.user = UserNetworks(cfg.root, cfg.exec_root, ops, firewall=firewall, ip_forward=cfg.ip_forward,
                                 taken=[cfg.subnet] if cfg.subnet else [])

    def has_network(self, name: str) -> bool:
        return self.user.find(name) is not None

    async def start(self) -> None:
        await self.manager.start()
        await self.user.start()

    async def close(self, *, remove_bridge: bool = False) -> None:
        try:
            await self.user.close()
        finally:
            await self.manager.close(remove_bridge=remove_bridge)

    async def setup(self, container_id: str, container_dir: Path, req: NetRequest) -> NetResult:
        ports = [PortMapping(str(p["protocol"]), str(p["host_ip"]), int(p["host_port"]), int(p["container_port"]))
                 for p in req.ports]
        on_user_network = not (req.mode in self.BUILTIN_MODES or req.mode.startswith("container:"))
        if on_user_network:
            s, _ = await self.user.setup(
                container_id, req.mode, name=req.name, hostname=req.hostname, aliases=req.aliases, ports=ports,
                publish_all_exposed=list(req.publish_all_exposed),
            )
        else:
            s = await self.manager.setup(
                container_id, req.mode, hostname=req.hostname, ports=ports,
                publish_all_exposed=list(req.publish_all_exposed), shared_netns=req.shared_netns or None,
            )
        try:
            if s.owns_netns:
                await self.user.attach_pending(container_id, s.sandbox_key)  # `network connect` while stopped
                await self.user.sync_dns()
            # on a user network the embedded resolver answers (unless --dns says otherwise)
            dns = list(req.dns) or ([DNS_SERVER] if on_user_network else [])
            files = await asyncio.to_thread(
                write_container_files, container_dir, hostname=req.hostname, ip=s.ip_address or None,
                extra_hosts=list(req.extra_hosts), dns=dns, host_network=req.mode == "host",
            )
        except BaseException:
            await self._teardown(container_id, s)
            raise
        forwards = tuple(
            {"protocol": p.protocol, "host_ip": p.host_ip, "host_port": p.host_port,
             "container_ip": s.ip_address, "container_port": p.container_port}
            for p in s.ports
        )
        return NetResult(s.to_dict(), {k: str(v) for k, v in files.items()}, forwards)

    async def teardown(self, container_id: str, settings: dict[str, Any]) -> None:
        await self._teardown(container_id, NetworkSettings.from_dict(settings))

    async def _teardown(self, container_id: str, s: NetworkSettings) -> None:
        on_user_network = self.user.by_bridge(s.bridge) is not None if s.bridge else False
        if not on_user_network:
            await self.manager.teardown(container_id, s)
        if on_user_network or any(container_id in r.endpoints for r in self.user.store):
            await self.user.teardown(container_id, s)

    async def recover(self, live: dict[str, dict[str, Any]]) -> None:
        settings = {cid: NetworkSettings.from_dict(s) for cid, s in live.items() if s}
        await self.manager.recover(settings)
        await self.user.recover(settings)
