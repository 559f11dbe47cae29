"""Peer daemons the bench starts itself (containerd, dockerd): temp dirs, own sockets, stopped by pid.

Both run inside the bench's Sandbox (private mount + network namespaces): docker's bridge lives there
and is gone with it; iptables, masquerade and ip_forward stay off (no NAT, ever).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.sandbox import Sandbox

# Each run appends "-<run tag>" to these: the bench's teardown kills what is left in its own cgroup
# trees, so two runs side by side must never share one.
CONTAINERD_NS = "benchctr"
RUNC_STATE = Path("/run/containerd/runc")  # containerd-shim-runc-v2's runc --root, per namespace
DOCKER_CGROUP_PARENT = "bench-docker"
DOCKER_BIP = "10.253.0.1/22"  # room for the scale section's 300 bridged containers


def wait_until(pred: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def quiet(argv: Sequence[str], timeout: float = 60, env: dict[str, str] | None = None) -> bool:
    try:
        return subprocess.run(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=timeout, check=False, env=env).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def stop_pid(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def cgroup_tree_pids(name: str, root: Path = Path("/sys/fs/cgroup")) -> set[int]:
    """Every pid in <root>/<ctrl>/<name>/**/cgroup.procs: the containers the bench started under it."""
    pids: set[int] = set()
    for ctrl in [root, *(p for p in root.iterdir() if p.is_dir())]:
        top = ctrl / name
        if not top.is_dir():
            continue
        for procs in top.rglob("cgroup.procs"):
            try:
                pids.update(int(x) for x in procs.read_text().split())
            except OSError:
                continue
    return pids


def kill_cgroup_tree(name: str, timeout: float = 5) -> list[int]:
    """SIGKILL what is left in the bench's own cgroup tree (containers live in their own mount
    namespaces, so the sandbox's member scan does not see them)."""
    left = sorted(cgroup_tree_pids(name))
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not cgroup_tree_pids(name), timeout, 0.05)
    return left


def remove_cgroup_tree(name: str, root: Path = Path("/sys/fs/cgroup")) -> list[str]:
    """rmdir <root>/<ctrl>/<name> bottom-up on every controller; returns what could not be removed."""
    left: list[str] = []
    for ctrl in [root, *(p for p in root.iterdir() if p.is_dir())]:
        top = ctrl / name
        if not top.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(top, topdown=False):
            for d in dirnames:
                try:
                    os.rmdir(os.path.join(dirpath, d))
                except OSError:
                    left.append(os.path.join(dirpath, d))
        try:
            os.rmdir(top)
        except OSError:
            left.append(str(top))
    return left


class Containerd:
    """containerd with its own root, state and socket; `ctr` bound to it."""

    def __init__(self, sandbox: Sandbox, workdir: Path, binary: str = "containerd", ctr: str = "ctr",
                 namespace: str = CONTAINERD_NS) -> None:
        self.sandbox = sandbox
        self.namespace = namespace
        self.dir = workdir
        self.binary = binary
        self.ctr_bin = ctr
        self.address = str(workdir / "c.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        return "\n".join([
            "version = 2",
            f'root = "{self.dir / "root"}"',
            f'state = "{self.dir / "state"}"',
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
            "[grpc]", f'  address = "{self.address}"',
            "[ttrpc]", f'  address = "{self.address}.ttrpc"',
            "[debug]", '  address = ""',
            "[metrics]", '  address = ""', "",
        ])

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sandbox.mount_tmpfs(self.dir / "state")
        (self.dir / "config.toml").write_text(self.config())
        self.spawn()
        if not wait_until(lambda: quiet(self.ctr("version"), timeout=5), 20, 0.1):
            raise RuntimeError(f"containerd did not answer on {self.address}; see {self.dir}/containerd.log")

    def spawn(self) -> None:
        """Start the process on the existing config and state (a restart keeps its shims' state)."""
        log = open(self.dir / "containerd.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(self.sandbox.argv([self.binary, "--config", str(self.dir / "config.toml")]),
                                     stdout=log, stderr=log, start_new_session=True)
        log.close()

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def ctr(self, *args: str) -> list[str]:
        return [self.ctr_bin, "-a", self.address, "-n", self.namespace, *args]

    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def remove_all(self) -> None:
        ids = subprocess.run(self.ctr("containers", "ls", "-q"), capture_output=True, text=True,
                             check=False).stdout.split()
        for cid in ids:
            quiet(self.ctr("tasks", "kill", "-s", "SIGKILL", cid), 10)
        for cid in ids:
            quiet(self.ctr("tasks", "delete", "-f", cid), 20)
            quiet(self.ctr("containers", "delete", cid), 20)

    def stop(self) -> None:
        if self.proc is not None:
            self.remove_all()
            stop_pid(self.proc)
            self.proc = None
        # containerd-shim-runc-v2 keeps runc's state under /run/containerd/runc/<namespace>, outside
        # this containerd's own dirs: the namespace's (empty, its containers deleted) dir goes too
        with contextlib.suppress(OSError):
            os.rmdir(RUNC_STATE / self.namespace)


class Dockerd:
    """dockerd with temp data-root/exec-root/socket/pidfile; no iptables, no masquerade, no forwarding."""

    def __init__(self, sandbox: Sandbox, workdir: Path, binary: str = "dockerd",
                 client: str = "docker", cgroup_parent: str = DOCKER_CGROUP_PARENT,
                 runtimes: dict[str, str] | None = None) -> None:
        self.sandbox = sandbox
        self.runtimes = dict(runtimes or {})  # --add-runtime NAME=PATH (bench.engines: ctrd-runtime)
        self.cgroup_parent = cgroup_parent
        self.dir = workdir
        self.binary = binary
        self.client = client
        self.socket = str(workdir / "d.sock")
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, "DOCKER_CONFIG": str(workdir / "cli")}

    def argv(self, live_restore: bool = False) -> list[str]:
        argv = [self.binary, "--data-root", str(self.dir / "root"), "--exec-root", str(self.dir / "e"),
                "-H", f"unix://{self.socket}", "--pidfile", str(self.dir / "d.pid"),
                "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--bip", DOCKER_BIP,
                "--cgroup-parent", "/" + self.cgroup_parent, "--log-level", "warn"]
        if live_restore:
            argv.append("--live-restore")
        for name, path in self.runtimes.items():
            argv += ["--add-runtime", f"{name}={path}"]
        return argv

    def spawn(self, live_restore: bool = False) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        log = open(self.dir / "dockerd.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(self.sandbox.argv(self.argv(live_restore)), stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()

    def start(self, live_restore: bool = False, timeout: float = 30) -> None:
        self.sandbox.mount_tmpfs(self.dir / "e")
        self.spawn(live_restore)
        if not wait_until(self.answers, timeout, 0.05):
            raise RuntimeError(f"dockerd did not answer on {self.socket}; see {self.dir}/dockerd.log")

    def answers(self) -> bool:
        return quiet(self.docker("version"), timeout=5, env=self.env)

    def docker(self, *args: str) -> list[str]:
        return [self.client, "-H", f"unix://{self.socket}", *args]

    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def remove_all(self) -> None:
        ids = subprocess.run(self.docker("ps", "-aq"), capture_output=True, text=True, check=False,
                             env=self.env).stdout.split()
        if ids:
            quiet(self.docker("rm", "-f", *ids), 300, env=self.env)

    def stop(self) -> None:
        if self.proc is not None:
            self.remove_all()
            stop_pid(self.proc, timeout=30)
            self.proc = None
