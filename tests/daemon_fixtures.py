"""A real `ctrd` for e2e tests: its own root, exec-root, socket, bridge, subnet and cgroup parent.

    def test_x(ctrd):                       # fixture: started, torn down, leak-checked
        cid = ctrd.client.run("busybox", ["sleep", "10"], network_mode="none")
        ctrd.client.stop(cid, timeout=1)

`start_daemon(base)` / `DaemonProc.stop()` / `.kill9()` / `.restart()` let fault tests drive the
process themselves. Teardown sends SIGTERM (which stops every container, as docker does without
--live-restore) and asserts that nothing is left: no mounts under the temp root, no netns files,
no shim processes of this daemon, no container cgroups; then it removes the bridge and the (empty)
cgroup parents.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from ctrd import errgrpc
from ctrd.errdefs import CtrdError, FailedPrecondition
from ctrd.v1 import container_pb2 as cpb
from ctrd.v1 import container_pb2_grpc, image_pb2_grpc, system_pb2_grpc
from ctrd.v1 import system_pb2 as spb
from daemon.network.firewall import Firewall

READY_TIMEOUT = 30.0
CGROUP_ROOT = Path("/sys/fs/cgroup")


class Client:
    """A small synchronous client; every call raises ctrd.errdefs errors (errgrpc.to_native)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.channel = grpc.insecure_channel(f"unix:{address}")
        self.containers = container_pb2_grpc.ContainerServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.system = system_pb2_grpc.SystemServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.images = image_pb2_grpc.ImageServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.channel.close()

    def call(self, stub: Any, method: str, request: Any, timeout: float = 60.0) -> Any:
        try:
            return getattr(stub, method)(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise errgrpc.to_native(exc) from None

    # convenience verbs -------------------------------------------------------------------

    def create(self, image: str = "busybox", cmd: list[str] | None = None, **spec: Any) -> str:
        s = cpb.ContainerSpec(image=image, **spec)
        if cmd is not None:
            s.cmd.extend(cmd)
            s.cmd_set = True
        return str(self.call(self.containers, "Create", cpb.CreateRequest(spec=s)).id)

    def start(self, ref: str) -> None:
        self.call(self.containers, "Start", cpb.StartRequest(id=ref))

    def run(self, image: str = "busybox", cmd: list[str] | None = None, **spec: Any) -> str:
        cid = self.create(image, cmd, **spec)
        self.start(cid)
        return cid

    def stop(self, ref: str, timeout: int | None = None, signal: str = "") -> None:
        req = cpb.StopRequest(id=ref, signal=signal)
        if timeout is not None:
            req.timeout = timeout
        self.call(self.containers, "Stop", req, timeout=120)

    def kill(self, ref: str, signal: str = "") -> None:
        self.call(self.containers, "Kill", cpb.KillRequest(id=ref, signal=signal))

    def remove(self, ref: str, force: bool = False) -> None:
        self.call(self.containers, "Remove", cpb.RemoveRequest(id=ref, force=force))

    def pause(self, ref: str) -> None:
        self.call(self.containers, "Pause", cpb.PauseRequest(id=ref))

    def resume(self, ref: str) -> None:
        self.call(self.containers, "Resume", cpb.ResumeRequest(id=ref))

    def inspect(self, ref: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.call(self.containers, "Inspect", cpb.InspectRequest(id=ref)).json)
        return out

    def wait(self, ref: str, timeout: float = 60.0) -> int:
        return int(self.call(self.containers, "Wait", cpb.WaitRequest(id=ref), timeout=timeout).exit_code)

    def list(self, all_: bool = True) -> list[Any]:
        return list(self.call(self.containers, "List", cpb.ListRequest(all=all_)).containers)

    def logs(self, ref: str, **kw: Any) -> list[Any]:
        req = cpb.LogsRequest(id=ref, tail=kw.pop("tail", -1), **kw)
        try:
            return list(self.containers.Logs(req, timeout=60))
        except grpc.RpcError as exc:
            raise errgrpc.to_native(exc) from None

    def version(self) -> Any:
        return self.call(self.system, "Version", spb.VersionRequest(), timeout=2)

    def wait_logged(self, ref: str, text: bytes, timeout: float = 30.0) -> None:
        """Wait until the container has logged the line `text` (a handshake: `trap ...; echo ready`)."""
        deadline = time.monotonic() + timeout
        while not any(e.data == text for e in self.logs(ref)):
            assert time.monotonic() < deadline, f"{ref[:12]} never logged {text!r}"
            time.sleep(0.02)

    def wait_status(self, ref: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            info = self.inspect(ref)
            if info["State"]["Status"] == status or time.monotonic() > deadline:
                return info
            time.sleep(0.05)


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


@dataclass
class DaemonProc:
    base: Path
    root: Path
    exec_root: Path
    address: str
    bridge: str
    subnet: str
    cgroup_parent: str
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    client: Client | None = None
    log_path: Path | None = None

    @property
    def c(self) -> Client:
        assert self.client is not None, "daemon not started"
        return self.client

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "daemon.main", "--root", str(self.root), "--exec-root", str(self.exec_root),
            "--address", self.address, "--bridge", self.bridge, "--subnet", self.subnet,
            "--cgroup-parent", self.cgroup_parent,
            # the host's ip_forward is everyone's: a test that needs routing runs in its own netns
            "--ip-forward=false", *self.extra,
        ]

    def start(self) -> None:
        self.log_path = self.base / "ctrd.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 (the daemon writes to it)
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        self.client = Client(self.address)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                self.client.version()
                return
            except CtrdError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ctrd did not come up (rc={self.proc.returncode}):\n{self.log()}") from None
                time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path and self.log_path.exists() else ""

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful: containers are stopped unless --live-restore); returns the exit code."""
        assert self.proc is not None
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.proc = None
        return rc

    def kill9(self) -> None:
        assert self.proc is not None
        if self.client is not None:
            self.client.close()
            self.client = None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        if self.proc is not None:
            self.stop()
        self.start()

    # what the daemon owns on the machine ---------------------------------------------------

    def shim_pids(self) -> list[int]:
        out = []
        needle = f"--exec-root\0{self.exec_root}".encode()
        shims = str(self.exec_root / "shims")
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                comm = (d / "comm").read_text().strip()
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            # Exactly "ctrd-shim": a "ctrd-shim-call" is a short-lived helper forked by a shim or by
            # the launcher's warm-up (which runs right after a daemon restart), not a shim.
            if comm == "ctrd-shim" and (needle in cmd or shims.encode() in cmd):
                out.append(int(d.name))
        # a shim's short-lived fork for one runtime call ("ctrd-shim-call", named just after the fork)
        # is its child; a shim itself is detached from whoever launched it
        return [pid for pid in out if _ppid(pid) not in out]

    def mounts(self) -> list[str]:
        prefix = str(self.base) + "/"
        with open("/proc/self/mountinfo") as f:
            return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]

    def container_cgroups(self) -> list[str]:
        found = []
        for ctrl in CGROUP_ROOT.iterdir() if CGROUP_ROOT.exists() else []:
            parent = ctrl / self.cgroup_parent
            if parent.is_dir():
                found += [str(p) for p in parent.iterdir() if p.is_dir()]
        return found

    def leftovers(self) -> list[str]:
        netns = self.exec_root / "netns"
        return (
            [f"mount {m}" for m in self.mounts()]
            + [f"netns {p}" for p in (netns.iterdir() if netns.exists() else [])]
            + [f"shim pid {p}" for p in self.shim_pids()]
            + [f"cgroup {c}" for c in self.container_cgroups()]
        )

    def cleanup_host(self) -> None:
        """Remove the bridge, its firewall rules (ctrd's chains too when no other network uses
        them) and the empty cgroup parents: shared, not removed by a daemon that exits."""
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
        asyncio.run(remove_firewall_rules(self.root))
        for ctrl in CGROUP_ROOT.iterdir() if CGROUP_ROOT.exists() else []:
            parent = ctrl / self.cgroup_parent
            if parent.is_dir():
                try:
                    parent.rmdir()
                except OSError:
                    pass


async def remove_firewall_rules(root: Path) -> None:
    """Every chain and rule of the daemon on `root` (and the shared chains when no other ctrd's
    jump is left in them)."""
    fw = Firewall(root)
    try:
        await fw.remove_all()
    except FailedPrecondition:
        pass  # no iptables on this machine: the daemon made no rules either


def new_daemon(base: Path, *extra: str) -> DaemonProc:
    tag = secrets.token_hex(2)
    return DaemonProc(
        base=base, root=base / "root", exec_root=base / "run", address=str(base / "run" / "ctrd.sock"),
        bridge=f"ctrdt{tag}", subnet=f"10.2{secrets.randbelow(50) + 5}.{secrets.randbelow(250) + 1}.0/24",
        cgroup_parent=f"ctrdt-{tag}", extra=list(extra),
    )


def start_daemon(base: Path, *extra: str) -> DaemonProc:
    d = new_daemon(base, *extra)
    d.start()
    return d


def teardown(d: DaemonProc) -> list[str]:
    """Stop (SIGTERM), then report what was left; always cleans the host afterwards."""
    problems: list[str] = []
    try:
        if d.proc is not None:
            rc = d.stop()
            if rc != 0:
                problems.append(f"ctrd exited {rc}:\n{d.log()}")
        deadline = time.monotonic() + 5
        left = d.leftovers()
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = d.leftovers()
        problems += left
        if left and d.shim_pids():
            # containers left running (live-restore, or a daemon bug): a plain daemon on the same
            # root recovers them and stops them at SIGTERM, so the host is clean for the next test
            d.extra = [a for a in d.extra if a != "--live-restore"]
            try:
                d.start()
                d.stop()
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                problems.append(f"cleanup daemon: {exc}")
        for pid in d.shim_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    finally:
        d.cleanup_host()
    return problems


@pytest.fixture
def ctrd(short_tmp: Path) -> Iterator[DaemonProc]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    d = start_daemon(short_tmp)
    try:
        yield d
    finally:
        problems = teardown(d)
        print(f"--- ctrd log ({d.log_path}) ---\n{d.log()}")  # captured: shown when the test fails
    if problems:
        pytest.fail("ctrd left things behind: " + "; ".join(problems))
