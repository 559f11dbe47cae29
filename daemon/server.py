"""The daemon process: lock the root, recover, serve the API on a unix socket, shut down cleanly.

Start-up: take an exclusive lock on `<root>/ctrd.lock` (a second daemon on the same root is
refused), write `<exec-root>/ctrd.pid`, start the shim launcher and the network helper, recover
containers from `<root>/containers/`, then listen. SIGTERM/SIGINT: end event streams, stop
accepting calls, stop every container (or, with --live-restore, leave them running), clean up.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import grpc.aio

from ctrd import errdefs
from ctrd.v1 import container_pb2_grpc, image_pb2_grpc, network_pb2_grpc, system_pb2_grpc, volume_pb2_grpc
from daemon.config import Config
from daemon.containers.manager import ContainerManager
from daemon.containers.recovery import recover
from daemon.containers.state import is_alive
from daemon.dockerapi.backend import Backend
from daemon.dockerapi.server import DockerAPI
from daemon.images.api import Images
from daemon.layers.api import Layers
from daemon.network.api import Network
from daemon.services.containers import ContainerServicer
from daemon.services.system import SystemServicer
from daemon.services.volumes import VolumeServicer
from daemon.shims.api import Shims
from daemon.wiremap import registrar

if TYPE_CHECKING:
    from daemon.images.store import ImageStore
    from daemon.layers.overlay2 import LayerStore

log = logging.getLogger(__name__)
MAX_MESSAGE = 64 * 1024 * 1024


# A client stream's receive window, fixed at 4 MiB. With grpc's BDP probing the window grows as
# fast as a local client sends, and an upload (image load/import, cp) the daemon spools slower
# than it arrives is buffered in the daemon: a 200 MB `image load` raised its peak RSS by
# 18-80 MB here (111 MB once in CI) and 13-17 MB with this window, 0.5-0.9 s vs 0.9-1.1 s.
RECEIVE_WINDOW = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 4 << 20)]


class RootLock:
    """flock on <root>/ctrd.lock, held for the daemon's life (released by the kernel on death)."""

    def __init__(self, root: Path) -> None:
        self.path = root / "ctrd.lock"
        self._f: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o710)
        # docker's mode: the root holds containers' env and secrets; an older ctrd (or the umask)
        # may have left it 0755, so it is tightened on every start.
        os.chmod(self.path.parent, 0o710)
        f = open(self.path, "a+")  # noqa: SIM115 (held open for the daemon's whole life)
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            f.close()
            raise errdefs.FailedPrecondition(
                f"another ctrd (pid {owner}) is already running with root {self.path.parent}"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._f = f

    def release(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class Daemon:
    def __init__(
        self,
        cfg: Config,
        images: Images,
        layers: Layers,
        shims: Shims,
        network: Network,
        image_servicer: image_pb2_grpc.ImageServiceServicer | None = None,
        image_count: Callable[[], int] | None = None,
    ) -> None:
        self.cfg = cfg
        self.shims = shims
        self.network = network
        self.manager = ContainerManager(cfg, images, layers, shims, network)
        self.image_servicer = image_servicer
        self.network_servicer: network_pb2_grpc.NetworkServiceServicer | None = None
        self._image_count = image_count
        self.extra_services: list[Callable[[grpc.aio.Server], None]] = []  # (servicer registrations)
        self.server: grpc.aio.Server | None = None
        self.docker = Backend(self.manager)  # what the Docker Engine API translates to
        self.docker_api: DockerAPI | None = None
        self.lock = RootLock(cfg.root)
        self.stopping = asyncio.Event()
        self._launcher: asyncio.Future[None] | None = None

    async def start(self) -> None:
        cfg = self.cfg
        self.lock.acquire()
        cfg.exec_root.mkdir(parents=True, exist_ok=True, mode=0o711)
        cfg.address.parent.mkdir(parents=True, exist_ok=True)
        cfg.pid_file.write_text(f"{os.getpid()}\n")
        # The shim launcher (a pre-warmed interpreter) and the network helper are two independent
        # processes that take a while to start. The helper starts now and recovery runs
        # meanwhile: it needs the network only to re-attach live containers (it awaits the helper
        # there). It never needs the launcher (it reconnects to running shims), so the API
        # listens without waiting for the launcher: a launch asked for before it is up waits for
        # it (RealShims).
        t0 = time.monotonic()
        network = asyncio.ensure_future(self.network.start())
        recovered = asyncio.get_running_loop().create_future()
        # the launcher's process starts once recovery is done (its warm-up would compete with it
        # for the CPU); a launch asked for meanwhile waits for it
        self._launcher = asyncio.ensure_future(self.shims.start(after=recovered))
        self._launcher.add_done_callback(_report_launcher)
        try:
            await asyncio.to_thread(self.manager.volumes.store.load)
            await recover(self.manager, network)
        finally:
            recovered.set_result(None)
            await asyncio.gather(network, return_exceptions=True)
        network.result()  # a network helper that failed to start fails the daemon start
        running = [c for c in self.manager.store if is_alive(c.status)]
        await asyncio.to_thread(self.manager.volumes.store.reconcile, self.manager.volumes.live_holders(running))
        log.info("recovered %d containers in %.3f s", len(self.manager.store), time.monotonic() - t0)
        self.server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE),
                     *RECEIVE_WINDOW],
        )
        mapped = registrar(self.server)  # every service's handlers map errors at the wire
        container_pb2_grpc.add_ContainerServiceServicer_to_server(ContainerServicer(self.manager), mapped)
        count = self._image_count or (lambda: 0)
        system_pb2_grpc.add_SystemServiceServicer_to_server(SystemServicer(self.manager, count), mapped)
        if self.image_servicer is not None:
            image_pb2_grpc.add_ImageServiceServicer_to_server(self.image_servicer, mapped)
        if self.network_servicer is not None:
            network_pb2_grpc.add_NetworkServiceServicer_to_server(self.network_servicer, mapped)
        volume_pb2_grpc.add_VolumeServiceServicer_to_server(VolumeServicer(self.manager.volumes.store), mapped)
        for register in self.extra_services:
            register(mapped)
        with contextlib.suppress(FileNotFoundError):
            cfg.address.unlink()  # stale socket of a dead daemon (we hold the root lock)
        old_umask = os.umask(0o117)
        try:
            if self.server.add_insecure_port(f"unix:{cfg.address}") == 0:
                raise errdefs.Unavailable(f"address: cannot listen on {cfg.address}")
        finally:
            os.umask(old_umask)
        await self.server.start()
        os.chmod(cfg.address, 0o660)
        if cfg.docker_socket is not None:
            self.docker_api = DockerAPI(self.docker)
            await self.docker_api.start(cfg.docker_socket)
        log.info("ctrd listening on %s (root %s, exec-root %s)", cfg.address, cfg.root, cfg.exec_root)

    def shutdown_budget(self) -> float:
        budget = self.cfg.shutdown_timeout
        for c in self.manager.store:
            if is_alive(c.status):
                t = c.config.stop_timeout if c.config.stop_timeout is not None else self.cfg.stop_timeout
                if t < 0:
                    return -1.0
                budget = max(budget, t + 5)
        return budget

    async def stop(self) -> None:
        self.manager.events.close()
        if self.docker_api is not None:
            await self.docker_api.close()
        if self.server is not None:
            await self.server.stop(1.0)
        budget = self.shutdown_budget()
        try:
            await asyncio.wait_for(self.manager.shutdown(self.cfg.live_restore), None if budget < 0 else budget)
        except TimeoutError:
            log.error("force shutdown: containers did not stop within %.0f s", budget)
        if self._launcher is not None:
            await asyncio.gather(self._launcher, return_exceptions=True)
        await asyncio.to_thread(self.manager.volumes.store.close)
        for closer in (self.network.close, self.shims.close):
            try:
                await closer()
            except Exception as exc:  # shutting down: report and keep going
                log.warning("shutdown: %s", exc)
        with contextlib.suppress(FileNotFoundError):
            self.cfg.address.unlink()
        with contextlib.suppress(FileNotFoundError):
            self.cfg.pid_file.unlink()
        self.lock.release()


def _report_launcher(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("shim launcher: %s (shims start by exec'ing ctrd-shim instead)", fut.exception())


def build_daemon(cfg: Config) -> Daemon:
    from daemon.containers.cgwarm import MigrationWarmer, needed, own_procs_file
    from daemon.distribution.client import Options
    from daemon.distribution.service import Distribution
    from daemon.images.store import ImageStore
    from daemon.layers.overlay2 import LayerStore
    from daemon.network.service import RealNetwork
    from daemon.security.options import warm_profiles
    from daemon.services.networks import NetworkServicer
    from daemon.services.registry import RegistryImageServicer
    from daemon.shims.manager import RealShims

    layers = LayerStore(cfg.root / "overlay2")
    images = ImageStore(cfg.root, layers)
    shims = RealShims(cfg.exec_root, warm_profiles(cfg.security_defaults))
    network = RealNetwork(cfg)
    d = Daemon(cfg, images, layers, shims, network)
    if needed(cfg.runtime):
        d.manager.monitor.migration_warmer = MigrationWarmer(own_procs_file())

    def in_use(image_id: str) -> bool:
        return any(c.image_id == image_id for c in d.manager.store)

    opts = Options(frozenset(cfg.insecure_registries), mirrors=cfg.registry_mirrors)
    dist = Distribution(images, cfg.root, opts, cfg.max_concurrent_downloads)
    d.image_servicer = RegistryImageServicer(images, dist, in_use)
    d.network_servicer = NetworkServicer(network.user, d.manager)
    d._image_count = lambda: len(images.list())
    d.docker.images, d.docker.dist, d.docker.networks, d.docker.image_in_use = images, dist, network.user, in_use
    _add_file_services(d, images, layers)
    return d


def _add_file_services(d: Daemon, images: ImageStore, layers: LayerStore) -> None:
    """cp/export/diff/commit (FilesService) and prune/df (CleanupService)."""
    from ctrd.v1 import cleanup_pb2_grpc, files_pb2_grpc
    from daemon.cleanup.service import Cleanup
    from daemon.files.service import Files
    from daemon.services.cleanup import CleanupServicer
    from daemon.services.files import FilesServicer

    d.docker.files, d.docker.cleanup = Files(d.manager, images, layers), Cleanup(d.manager, images, layers)
    files = FilesServicer(d.docker.files)
    cleanup = CleanupServicer(d.docker.cleanup)
    d.extra_services.append(lambda server: files_pb2_grpc.add_FilesServiceServicer_to_server(files, server))
    d.extra_services.append(lambda server: cleanup_pb2_grpc.add_CleanupServiceServicer_to_server(cleanup, server))


async def cleanup_network(cfg: Config) -> None:
    """`ctrd --cleanup`: the bridge (when unused), its firewall rules, ctrd's chains when unused."""
    from daemon.network.service import RealNetwork

    network = RealNetwork(cfg)
    await network.start()
    await network.close(remove_bridge=True)


async def serve(cfg: Config) -> None:
    # The cyclic GC at start-up: what the imports made lives as long as the daemon, so it is
    # frozen (no later full collection walks it again), and the collector is off while the
    # records load and the API comes up. A restart with 1000 running containers made ~150
    # collections from here to the recovery's end (gen2 ones walking every module's objects):
    # 65-160 ms; 9-26 ms with this, all in build_daemon (2026-12-07, gc.callbacks timing, 8
    # alternating restarts each; recovery p50 1.41 -> 1.36 s in that noisy run, the daemon's RSS
    # unchanged). The start's garbage is collected afterwards.
    gc.freeze()
    d = build_daemon(cfg)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, d.stopping.set)
    started = False
    try:
        gc.disable()
        try:
            await d.start()
        finally:
            gc.enable()
        started = True
        await d.stopping.wait()
        log.info("shutting down (live-restore: %s)", cfg.live_restore)
    finally:
        if started or d.lock._f is not None:
            await d.stop()
