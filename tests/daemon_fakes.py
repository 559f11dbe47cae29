"""Fakes for what the container manager uses (daemon/{images,layers,shims,network}/api.py): images,
layers, shims, network. No root needed.

The fake shim "runs" a process described by its argv:
    ["exit", "N"]          exits with N right after start
    ["ignore-term"]        ignores SIGTERM: stop ends with SIGKILL at the timeout (137)
    ["nosuchcmd", ...]     create fails with reason exec-not-found (docker 127)
    anything else          runs until signalled (exit 128+signal)
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctrd import errdefs
from daemon.health import HealthState, Probe
from daemon.network.api import NetRequest, NetResult
from daemon.network.settings import NetworkSettings
from daemon.shims.api import ExecResult, Exit, HealthReport, Limits, ShimCreate, ShimState, Stats


@dataclass
class FakeImageConfig:
    env: list[str] = field(default_factory=lambda: ["PATH=/bin"])
    cmd: list[str] = field(default_factory=lambda: ["sh"])
    entrypoint: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    stop_signal: str = ""
    exposed_ports: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    healthcheck: dict[str, Any] | None = None


@dataclass
class FakeImage:
    id: str = "sha256:" + "ab" * 32
    top_layer: str | None = "toplayer"
    config: FakeImageConfig = field(default_factory=FakeImageConfig)


class FakeImages:
    def __init__(self) -> None:
        self.images = {"busybox": FakeImage()}

    def get(self, ref: str) -> FakeImage:
        if ref not in self.images:
            raise errdefs.NotFound(f"no such image: {ref}")
        return self.images[ref]

    def ensure(self, ref: str) -> FakeImage:
        return self.get(ref)


class FakeLayers:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.layers: set[str] = set()
        self.mounted: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.fail_detach: set[str] = set()  # containers whose layers cannot be removed (EBUSY)
        self.volatile: set[str] = set()  # containers whose rootfs was mounted `volatile`

    def create_container_layers(self, container_id: str, image_top_layer: str | None) -> None:
        self.place_container_layers(container_id, image_top_layer)

    def place_container_layers(self, container_id: str, image_top_layer: str | None) -> list[Path]:
        self.calls.append(("create", container_id))
        (self.root / container_id / "merged").mkdir(parents=True)
        write_rootfs_files(self.root / container_id / "merged")
        self.layers.add(container_id)
        return [self.root / container_id]

    def mount(self, container_id: str, *, volatile: bool = False) -> Path:
        if container_id not in self.layers:
            raise errdefs.NotFound(f"layer {container_id}")
        self.calls.append(("mount", container_id))
        if volatile:
            self.volatile.add(container_id)
        self.mounted.add(container_id)
        return self.root / container_id / "merged"

    def merged_dir(self, container_id: str) -> Path:
        return self.root / container_id / "merged"

    def unmount(self, container_id: str) -> bool:
        self.calls.append(("unmount", container_id))
        was = container_id in self.mounted
        self.mounted.discard(container_id)
        return was

    def is_mounted(self, container_id: str) -> bool:
        return container_id in self.mounted

    def remove_container_layers(self, container_id: str) -> None:
        self.calls.append(("remove", container_id))
        self.mounted.discard(container_id)
        self.layers.discard(container_id)

    def detach_container_layers(self, container_id: str) -> list[Path]:
        if container_id in self.fail_detach:
            raise OSError(errno.EBUSY, "Device or resource busy", str(self.root / container_id))
        self.remove_container_layers(container_id)
        return []

    def dispose(self, doomed: Sequence[Path]) -> None:
        self.calls.extend(("dispose", str(d)) for d in doomed)

    def graph_data(self, container_id: str) -> dict[str, str]:
        d = self.root / container_id
        return {"LowerDir": f"{d}-init/diff", "MergedDir": f"{d}/merged", "UpperDir": f"{d}/diff", "WorkDir": f"{d}/work"}

    def container_layer_ids(self) -> Iterable[str]:
        return set(self.layers)


class FakeShim:
    def __init__(self, owner: FakeShims, cid: str, pid: int) -> None:
        self.owner = owner
        self.cid = cid
        self._pid = pid
        self.args: list[str] = []
        self.proc_pid = 0
        self.status = "created"
        self.exit: asyncio.Future[Exit] = asyncio.get_running_loop().create_future()
        self.closed = False
        self.gone = False  # the shim process "died"
        self.size = (0, 0)  # the last Resize
        self.deleted = False

    @property
    def shim_pid(self) -> int:
        return self._pid

    def _check(self) -> None:
        if self.gone or self.closed:
            raise errdefs.Unavailable(f"shim {self.cid}: connection closed")

    def _exit(self, status: int) -> None:
        if not self.exit.done():
            self.status = "stopped"
            self.exit.set_result(Exit(status, time.time()))

    async def create(self, req: ShimCreate) -> int:
        self._check()
        spec = json.loads((Path(req.bundle) / "config.json").read_text())
        self.args = spec["process"]["args"]
        self.owner.created.append((self.cid, req, spec))
        if self.args[0] == "nosuchcmd":
            raise errdefs.InvalidArgument(
                f'exec: "{self.args[0]}": executable file not found in $PATH', reason=errdefs.REASON_EXEC_NOT_FOUND
            )
        self.proc_pid = self.owner.next_pid()
        if req.start:
            return await self.start()
        return self.proc_pid

    async def start(self) -> int:
        self._check()
        self.status = "running"
        if self.args[0] == "exit":
            asyncio.get_running_loop().call_later(0.01, self._exit, int(self.args[1]))
        return self.proc_pid

    async def state(self) -> ShimState:
        self._check()
        return ShimState(self.status, self.proc_pid, self.exit.result() if self.exit.done() else None)

    async def kill(self, sig: int, all_: bool = False) -> None:
        self._check()
        if self.status == "stopped":
            raise errdefs.NotFound("process already finished")
        if sig == 15 and self.args[0] == "ignore-term":
            return
        if sig in (9, 15, 2):
            self._exit(128 + sig)

    async def stop(self, sig: int, timeout_ms: int) -> Exit:
        self._check()
        await self.kill(sig)
        try:
            return await asyncio.wait_for(asyncio.shield(self.exit), timeout_ms / 1000)
        except TimeoutError:
            self._exit(137)
            ex = self.exit.result()
            return Exit(ex.status, ex.exited_at, killed=True)

    async def wait(self) -> Exit:
        self._check()
        lost = asyncio.ensure_future(self.owner.lost[self.cid].wait())
        done, _ = await asyncio.wait({self.exit, lost}, return_when=asyncio.FIRST_COMPLETED)
        lost.cancel()
        if self.exit in done:
            return self.exit.result()
        raise errdefs.Unavailable(f"shim {self.cid}: connection lost")

    async def pause(self) -> None:
        self._check()
        self.status = "paused"

    async def resume(self) -> None:
        self._check()
        self.status = "running"

    async def exec(self, args: Sequence[str], env: Sequence[str], cwd: str, uid: int, gid: int,
                   gids: Sequence[int] = (), timeout: float | None = None) -> ExecResult:
        return ExecResult(0, " ".join(args).encode())

    async def stats(self) -> Stats:
        return Stats(memory_usage=1024, pids_current=1)

    async def pids(self) -> list[int]:
        return [self.proc_pid]

    async def resize(self, rows: int, cols: int) -> None:
        self._check()
        self.size = (rows, cols)

    async def delete(self) -> Exit:
        self._check()
        self.deleted = True
        return self.exit.result() if self.exit.done() else Exit(255, 0)

    async def shutdown(self) -> None:
        self._check()
        self.gone = True

    async def close(self) -> None:
        self.closed = True

    async def health(self, after_seq: int) -> HealthReport:
        """The reports a test pushed with FakeShims.push_health (seq 0: no healthcheck)."""
        self._check()
        created = [req for cid, req, _ in self.owner.created if cid == self.cid]
        if not created or created[-1].health is None or not created[-1].health.enabled:
            return HealthReport(0, HealthState())
        changed = self.owner.health_changed
        while True:
            self._check()
            reports = self.owner.health.get(self.cid, [])
            if reports and reports[-1].seq > after_seq:
                return reports[-1]
            async with changed:  # bounded: a shim killed meanwhile (kill_shim) notifies nobody
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 0.05)

    async def update(self, limits: Limits) -> None:
        self._check()
        self.owner.updates.append((self.cid, limits))


class FakeShims:
    def __init__(self, exec_root: Path) -> None:
        self.exec_root = Path(exec_root)
        self.shims: dict[str, FakeShim] = {}
        self.lost: dict[str, asyncio.Event] = {}
        self.created: list[tuple[str, ShimCreate, dict[str, Any]]] = []
        self._pid = 1000
        self.cleanups: list[str] = []
        self.launch_error: errdefs.CtrdError | None = None
        self.health: dict[str, list[HealthReport]] = {}
        self.health_changed = asyncio.Condition()
        self.updates: list[tuple[str, Limits]] = []

    async def push_health(self, cid: str, status: str, streak: int = 0, exit_code: int = 0) -> None:
        """What a shim's probe result would report: the next seq with this state."""
        reports = self.health.setdefault(cid, [])
        log = (*(reports[-1].state.log if reports else ()), Probe(time.time(), time.time(), exit_code, "out"))[-5:]
        reports.append(HealthReport(len(reports) + 1, HealthState(status, streak, log)))
        async with self.health_changed:
            self.health_changed.notify_all()

    def next_pid(self) -> int:
        self._pid += 1
        return self._pid

    async def start(self, after: Awaitable[None] | None = None) -> None:
        (self.exec_root / "shims").mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        pass

    def state_dir(self, container_id: str) -> Path:
        return self.exec_root / "shims" / container_id

    async def launch(self, container_id: str) -> FakeShim:
        if self.launch_error is not None:
            raise self.launch_error
        shim = FakeShim(self, container_id, self.next_pid())
        self.shims[container_id] = shim
        self.lost[container_id] = asyncio.Event()
        return shim

    async def reconnect(self, container_id: str) -> FakeShim:
        shim = self.shims.get(container_id)
        if shim is None or shim.gone:
            raise errdefs.Unavailable(f"container {container_id}: no shim")
        fresh = FakeShim(self, container_id, shim.shim_pid)
        fresh.args, fresh.proc_pid, fresh.status, fresh.exit = shim.args, shim.proc_pid, shim.status, shim.exit
        self.shims[container_id] = fresh
        return fresh

    async def cleanup_dead(self, container_id: str) -> Exit:
        self.cleanups.append(container_id)
        shim = self.shims.get(container_id)
        if shim is not None and shim.exit.done():
            return shim.exit.result()
        return Exit(255, time.time())

    def kill_shim(self, container_id: str) -> None:
        """Simulate SIGKILL of the shim process."""
        self.shims[container_id].gone = True
        self.lost[container_id].set()


class FakeNetwork:
    def __init__(self, exec_root: Path) -> None:
        self.exec_root = Path(exec_root)
        self.active: dict[str, NetworkSettings] = {}
        self.recovered: dict[str, NetworkSettings] | None = None
        self.fail_setup = False
        self.user_networks: set[str] = set()
        self.renamed: list[tuple[str, str]] = []
        # what expected() answers instead of the truth (a test of the start's wrong guess)
        self.expect: Callable[[str, Path, NetRequest], tuple[str, dict[str, str]] | None] | None = None

    def has_network(self, name: str) -> bool:
        return name in self.user_networks

    def networks_view(self, container_id: str, mode: str, settings: NetworkSettings | None) -> dict[str, Any]:
        from daemon.network.endpoint_view import container_networks

        return container_networks(container_id, mode, settings, [])

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def expected(self, container_id: str, container_dir: Path, req: NetRequest) -> tuple[str, dict[str, str]] | None:
        if self.expect is not None:
            return self.expect(container_id, container_dir, req)
        key = "" if req.mode == "host" else str(self.exec_root / "netns" / container_id[:12])
        return key, {f"/etc/{n}": str(Path(container_dir) / n) for n in ("hostname", "hosts", "resolv.conf")}

    async def setup(self, container_id: str, container_dir: Path, req: NetRequest) -> NetResult:
        if self.fail_setup:
            raise errdefs.Internal("network: setup failed (fake)")
        key = "" if req.mode == "host" else str(self.exec_root / "netns" / container_id[:12])
        settings = NetworkSettings(mode=req.mode, sandbox_key=key)
        if req.mode == "bridge":
            settings = NetworkSettings(mode=req.mode, sandbox_key=key, ip_address="10.0.0.2", gateway="10.0.0.1",
                                       mac_address="02:42:0a:00:00:02")
        self.active[container_id] = settings
        files = {}
        for name in ("hostname", "hosts", "resolv.conf"):
            p = Path(container_dir) / name
            p.write_text(req.hostname + "\n" if name == "hostname" else "")
            files[f"/etc/{name}"] = str(p)
        return NetResult(settings, files)

    async def teardown(self, container_id: str, settings: NetworkSettings) -> None:
        self.active.pop(container_id, None)

    async def rename(self, container_id: str, name: str) -> None:
        self.renamed.append((container_id, name))

    async def recover(self, live: dict[str, NetworkSettings]) -> None:
        self.recovered = dict(live)
        self.active = {k: v for k, v in self.active.items() if k in live}


def write_rootfs_files(merged: Path) -> None:
    """Minimal /etc/passwd and /etc/group for user resolution in bundle tests."""
    (merged / "etc").mkdir(parents=True, exist_ok=True)
    (merged / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    (merged / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\nstaff:x:50:nobody\n")
    os.chmod(merged / "etc/passwd", 0o644)
