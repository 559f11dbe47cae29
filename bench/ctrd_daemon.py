"""ctrd for the bench: started by the bench in its sandbox, driven through the gRPC API.

Until the daemon exists, start() raises CtrdUnavailable with the reason and every ctrd figure is
recorded as skipped ("ctrd daemon not available: ...").
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import grpc

from bench.daemons import stop_pid
from bench.sandbox import Sandbox
from bench.stats import Steps, run_rm
from ctrd.v1 import (
    container_pb2,
    container_pb2_grpc,
    image_pb2,
    image_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
)

CTRD_BRIDGE = "ctrdb0"
CTRD_SUBNET = "10.254.0.0/22"  # room for the scale section's 300 bridged containers
# Not "ctrd*": test runs on this machine count cgroups below ctrd* parents as their own leaks.
CTRD_CGROUP_PARENT = "bench-ctrd"  # + "-<run tag>": runs of the bench side by side stay apart
CHUNK = 1 << 20


class CtrdUnavailable(RuntimeError):
    pass


def describe_error(exc: BaseException) -> str:
    """One line: gRPC errors as CODE: details, others as their message."""
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class CtrdClient:
    """One connected client (channel + stubs) on ctrd's unix socket."""

    def __init__(self, address: str) -> None:
        self.channel: Any = cast(Any, grpc.insecure_channel(f"unix://{address}"))
        # Any: the generated stubs are typed for grpc.aio as well as sync channels; this client is sync.
        self.containers: Any = container_pb2_grpc.ContainerServiceStub(self.channel)
        self.images: Any = image_pb2_grpc.ImageServiceStub(self.channel)
        self.system: Any = system_pb2_grpc.SystemServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def version(self, timeout: float = 2.0) -> str:
        return str(self.system.Version(system_pb2.VersionRequest(), timeout=timeout).version)

    def import_image(self, tarball: Path, reference: str, changes: list[str]) -> str:
        def parts() -> Iterator[image_pb2.ImportRequest]:
            yield image_pb2.ImportRequest(header=image_pb2.ImportHeader(reference=reference, changes=changes))
            with open(tarball, "rb") as f:
                while chunk := f.read(CHUNK):
                    yield image_pb2.ImportRequest(chunk=chunk)
        return str(self.images.Import(parts(), timeout=120).id)

    def create(self, image: str, cmd: list[str], network: str, name: str = "") -> str:
        spec = container_pb2.ContainerSpec(name=name, image=image, cmd=cmd, cmd_set=True, network_mode=network)
        return str(self.containers.Create(container_pb2.CreateRequest(spec=spec), timeout=60).id)

    def start(self, cid: str) -> None:
        self.containers.Start(container_pb2.StartRequest(id=cid), timeout=60)

    def wait(self, cid: str) -> int:
        return int(self.containers.Wait(container_pb2.WaitRequest(id=cid), timeout=60).exit_code)

    def remove(self, cid: str, force: bool = False) -> None:
        self.containers.Remove(container_pb2.RemoveRequest(id=cid, force=force), timeout=60)

    def stop(self, cid: str, timeout: int = 10) -> None:
        self.containers.Stop(container_pb2.StopRequest(id=cid, timeout=timeout), timeout=timeout + 30)

    def run_rm(self, image: str, cmd: list[str], network: str, steps: Steps | None = None) -> int:
        return run_rm(self, image, cmd, network, steps)

    def running(self, timeout: float = 5.0) -> list[container_pb2.ContainerSummary]:
        resp = self.containers.List(container_pb2.ListRequest(all=False), timeout=timeout)
        return [c for c in resp.containers if c.state == "running"]

    def all_ids(self) -> list[str]:
        resp = self.containers.List(container_pb2.ListRequest(all=True), timeout=30)
        return [str(c.id) for c in resp.containers]

    def pid_of(self, cid: str) -> int:
        inspect = json.loads(self.containers.Inspect(container_pb2.InspectRequest(id=cid), timeout=10).json)
        return int(inspect.get("State", {}).get("Pid", 0))


class Ctrd:
    def __init__(self, sandbox: Sandbox, workdir: Path, binary: str = "ctrd", exec_root: Path | None = None,
                 cgroup_parent: str = CTRD_CGROUP_PARENT) -> None:
        self.sandbox = sandbox
        self.cgroup_parent = cgroup_parent
        self.dir = workdir
        self.binary = binary
        # shims/<64-hex id>/shim.sock must stay below the 108-byte sun_path limit: keep this short.
        self.exec_root = exec_root or workdir / "run"
        self.address = str(workdir / "c.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self, live_restore: bool) -> list[str]:
        argv = [self.binary, "--root", str(self.dir / "root"), "--exec-root", str(self.exec_root),
                "--address", self.address, "--bridge", CTRD_BRIDGE, "--subnet", CTRD_SUBNET,
                "--cgroup-parent", self.cgroup_parent]
        if live_restore:
            argv.append("--live-restore")
        return argv

    def spawn(self, live_restore: bool) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        log = open(self.dir / "ctrd.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(self.sandbox.argv(self.argv(live_restore)), stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()

    def start(self, live_restore: bool = True, timeout: float = 30) -> None:
        self.spawn(live_restore)
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise CtrdUnavailable(f"ctrd exited with code {self.proc.returncode} before answering "
                                      f"(log: {self.log_tail()})")
            if Path(self.address).exists():
                client = CtrdClient(self.address)
                try:
                    client.version(timeout=1)
                    return
                except grpc.RpcError as exc:
                    last = f"{exc.code().name}: {exc.details()}"
                finally:
                    client.close()
            time.sleep(0.05)
        self.stop()
        raise CtrdUnavailable(f"ctrd did not answer on {self.address} within {timeout:.0f} s ({last})")

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = (self.dir / "ctrd.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc, timeout=60)
            self.proc = None

    def remove_all(self) -> None:
        client = CtrdClient(self.address)
        try:
            for cid in client.all_ids():
                try:
                    client.remove(cid, force=True)
                except grpc.RpcError:
                    pass
        finally:
            client.close()
