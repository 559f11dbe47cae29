"""Interactive I/O, ctrd beside docker in the same run (section `attach`):

- `echo x | run -i --rm --network none busybox cat` p50 beside `run --rm --network none busybox true`
  (the CLI, both engines: the cost of an attached stdin over a plain foreground run);
- stdin→stdout throughput of 1 GiB through `run -i --rm busybox cat` (MiB/s, the CLI's pipes);
- the memory (PSS, USS, RSS) of the shims of N `run -d -it busybox sh` containers, each with one
  `attach` client on a pty (ctrd-shim vs docker's containerd-shim-runc-v2), at N = 10 and N = 100,
  the engines in turn at each N: PSS splits what the shims share (ctrd's forked launcher pages,
  the Go binary's text) among the N of them, so only figures at the same N compare.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.context import Context, output
from bench.ctrd_daemon import CtrdClient
from bench.procmem import ancestor_with_comm, read_procmem, summarize_mem
from bench.rootfs import IMAGE_REF
from bench.scripts import console_script
from bench.stats import summarize

GIB = 1 << 30
ATTACHED = (10, 100)  # attached tty containers per engine for the shim memory figures
_CHUNK = b"\0" * (1 << 20)


class _Engine:
    def __init__(self, name: str, cli: list[str], env: dict[str, str] | None, shim_comm: str,
                 pid_of: Callable[[str], int], daemon_pid: int = 0) -> None:
        self.name, self.cli, self.env, self.shim_comm, self.pid_of = name, cli, env, shim_comm, pid_of
        self.daemon_pid = daemon_pid

    def run(self, *args: str, stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        r = subprocess.run([*self.cli, *args], input=stdin, capture_output=True, timeout=timeout, env=self.env,
                           stdin=None if stdin is not None else subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"{self.name} {' '.join(args[:3])}: exit {r.returncode}: {r.stderr.decode()[-300:]}")
        return r


def _engines(ctx: Context) -> tuple[list[_Engine], dict[str, str]]:
    out: list[_Engine] = []
    skipped: dict[str, str] = {}
    if ctx.ctrd is not None:
        ctl = console_script("ctrctl")
        client = CtrdClient(ctx.ctrd.address)
        out.append(_Engine("ctrd", [ctl, "-a", ctx.ctrd.address], None, "ctrd-shim", client.pid_of, ctx.ctrd.pid()))
    else:
        skipped["ctrd"] = f"ctrd daemon not available: {ctx.ctrd_skip}"
    if ctx.dockerd is not None:
        d = ctx.dockerd

        def docker_pid(cid: str) -> int:
            return int(output(d.docker("inspect", "-f", "{{.State.Pid}}", cid), env=d.env).strip() or 0)

        out.append(_Engine("docker", d.docker(), d.env, "containerd-shim", docker_pid, d.pid()))
    else:
        skipped["docker"] = "dockerd not running"
    return out, skipped


def _p50(ctx: Context, fn: Callable[[], object]) -> dict[str, Any]:
    for _ in range(ctx.warmup):
        fn()
    samples = []
    for _ in range(ctx.runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000.0)
    return {"summary": summarize(samples).as_dict(), "samples_ms": [round(x, 3) for x in samples]}


_HZ = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _HZ


def _tree(pid: int) -> list[int]:
    """pid and its descendants now (dockerd's containerd, ctrd's shim launcher)."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def _tree_cpu(pids: list[int]) -> float:
    return sum(c for p in pids if (c := _cpu_s(p)) is not None)


def _throughput(e: _Engine, total: int = GIB) -> dict[str, float]:
    """MiB/s, and the CPU seconds per GiB of the engine's daemon(s), of the container's shim
    (sampled while it lives: it exits with the container) and of the CLI."""
    name = f"bench-cat-{os.getpid()}-{time.monotonic_ns()}"
    daemon = _tree(e.daemon_pid) if e.daemon_pid else []
    daemon_cpu0 = _tree_cpu(daemon)
    proc = subprocess.Popen([*e.cli, "run", "-i", "--rm", "--name", name, "--network", "none", IMAGE_REF, "cat"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=e.env)
    shim_cpu: dict[int, float] = {}
    done = threading.Event()

    def sample_shim() -> None:
        shim = None
        while not done.wait(0.2):
            if shim is None:
                try:
                    pid = e.pid_of(name)
                except Exception:
                    continue
                shim = ancestor_with_comm(pid, e.shim_comm) if pid else None
            if shim is not None and (c := _cpu_s(shim)) is not None:
                shim_cpu[shim] = c
    assert proc.stdin is not None and proc.stdout is not None
    stdin = proc.stdin

    def feed() -> None:
        try:
            for _ in range(total // len(_CHUNK)):
                stdin.write(_CHUNK)
        finally:
            stdin.close()

    t0 = time.perf_counter()
    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    sampler = threading.Thread(target=sample_shim, daemon=True)
    sampler.start()
    got = 0
    out_fd = proc.stdout.fileno()
    while data := os.read(out_fd, 1 << 20):
        got += len(data)
    _, status, usage = os.wait4(proc.pid, 0)
    rc = proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - t0
    done.set()
    sampler.join(10)
    writer.join(10)
    if rc != 0 or got != total:
        raise RuntimeError(f"{e.name}: cat of 1 GiB: exit {rc}, {got} of {total} bytes back")
    per_gib = GIB / total
    return {"seconds": round(elapsed, 3), "mib_per_s": round(total / (1 << 20) / elapsed, 1),
            "cpu_s_per_gib_daemon": round((_tree_cpu(daemon) - daemon_cpu0) * per_gib, 2),
            "cpu_s_per_gib_shim": round(sum(shim_cpu.values()) * per_gib, 2),
            "cpu_s_per_gib_cli": round((usage.ru_utime + usage.ru_stime) * per_gib, 2)}


def _read_until(fd: int, marker: bytes, timeout: float = 30) -> None:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"no {marker!r} on the attached terminal: {seen[-200:]!r}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            seen += os.read(fd, 65536)


def _attached_shim_pss(e: _Engine, k: int) -> dict[str, Any]:
    """k `run -d -it` shells, each with one `attach` client on its own pty: the shims' memory (one
    shim alone would be charged the whole of what it shares with the launcher or the other shims)."""
    ids: list[str] = []
    clients: list[tuple[subprocess.Popen[bytes], int, int]] = []
    try:
        for _ in range(k):
            ids.append(e.run("run", "-d", "-it", "--network", "none", IMAGE_REF, "sh").stdout.decode().strip())
            master, slave = pty.openpty()
            attach = subprocess.Popen([*e.cli, "attach", ids[-1]], stdin=slave, stdout=slave, stderr=slave,
                                      env=e.env, start_new_session=True)
            clients.append((attach, master, slave))
            os.write(master, b"echo attached-$((6*7))\r")
            _read_until(master, b"attached-42")
        time.sleep(1.0)  # settle: the shims' buffers as they stay
        shims = {s for cid in ids if (s := ancestor_with_comm(e.pid_of(cid), e.shim_comm)) is not None}
        if len(shims) != k:
            raise RuntimeError(f"{e.name}: {len(shims)} {e.shim_comm} processes for {k} containers")
        return summarize_mem([read_procmem(s) for s in sorted(shims)])
    finally:
        for attach, master, slave in clients:
            attach.kill()
            attach.wait(10)
            os.close(master)
            os.close(slave)
        if ids:
            subprocess.run([*e.cli, "rm", "-f", *ids], capture_output=True, env=e.env, timeout=120, check=False)


def measure(ctx: Context) -> dict[str, Any]:
    engines, skipped = _engines(ctx)
    out: dict[str, Any] = {name: {"skipped": why} for name, why in skipped.items()}
    for e in engines:
        row: dict[str, Any] = {}
        for key, fn in (
            ("run_i_cat", lambda e=e: e.run("run", "-i", "--rm", "--network", "none", IMAGE_REF, "cat", stdin=b"x\n")),
            ("run_true", lambda e=e: e.run("run", "--rm", "--network", "none", IMAGE_REF, "true")),
        ):
            try:
                row[key] = _p50(ctx, fn)
                print(f"  {e.name:<7} {key:<10} p50 {row[key]['summary']['p50']:8.1f} ms", flush=True)
            except Exception as exc:  # one broken row must not hide the others
                row[key] = {"skipped": f"failed: {exc}"}
        try:
            row["cat_1gib"] = _throughput(e)
            print(f"  {e.name:<7} cat_1gib           {row['cat_1gib']}", flush=True)
        except Exception as exc:
            row["cat_1gib"] = {"skipped": f"failed: {exc}"}
            print(f"  {e.name:<7} cat_1gib           failed: {exc}", flush=True)
        out[e.name] = row
    for k in ATTACHED:  # the engines in turn at each N
        for e in engines:
            key = mem_key(k)
            try:
                out[e.name][key] = _attached_shim_pss(e, k)
                print(f"  {e.name:<7} {key:<22} {out[e.name][key]}", flush=True)
            except Exception as exc:
                out[e.name][key] = {"skipped": f"failed: {exc}"}
                print(f"  {e.name:<7} {key:<22} failed: {exc}", flush=True)
    return out


def mem_key(k: int) -> str:
    """The result key of the attached-shim memory at k containers (N=10 keeps its first name)."""
    return "attached_tty_shim" if k == 10 else f"attached_tty_shim_n{k}"
