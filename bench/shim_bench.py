"""Shim benchmark (standalone, not a test): launch latency and per-shim memory.

    python bench/shim_bench.py [-n 100] [--runtime runc|""] [--no-containerd]

Starts N busybox containers (`sleep`), each under its own ctrd-shim forked by the pre-warmed
launcher, and reports shim launch latency (p50/p90) plus per-shim PSS/USS/RSS and threads with all
N running. When Debian's containerd is installed, runs the same N containers with a private
containerd (`ctr run -d --rootfs`) and reports containerd-shim-runc-v2 the same way. Everything it
starts is torn down (shims by pid, containers, cgroups, the private containerd).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctrd.shim.v1 import shim_pb2
from daemon.shims.client import ShimClient
from daemon.shims.launcher import ShimLauncher

CG_PARENT = "ctrd-shimbench"


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def mem(pid: int) -> dict[str, int]:
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        k, _, v = line.partition(":")
        fields[k.strip()] = int(v.split()[0])
    threads = next(int(x.split()[1]) for x in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if x.startswith("Threads:"))
    return {"pss": fields["Pss"], "uss": fields["Private_Clean"] + fields["Private_Dirty"],
            "rss": fields["Rss"], "threads": threads}


def summary(name: str, pids: list[int]) -> dict[str, float]:
    ms = [mem(p) for p in pids]
    out = {k: statistics.mean(m[k] for m in ms) for k in ("pss", "uss", "rss", "threads")}
    print(f"{name:<26} n={len(pids):<4} PSS {out['pss'] / 1024:6.2f} MiB  USS {out['uss'] / 1024:6.2f} MiB  "
          f"RSS {out['rss'] / 1024:6.2f} MiB  threads {out['threads']:.1f}   (mean per process)")
    return out


def smaps_breakdown(pid: int, top: int = 25) -> list[tuple[str, int, int, int]]:
    """Per mapping of pid: (name, Rss, Private_Dirty, Private_Clean) kB, largest private first.
    Shows which pages a shim copied after the fork (heap, pymalloc arenas, libc data...)."""
    rows: list[tuple[str, int, int, int]] = []
    name, vals = "", {}  # type: ignore[var-annotated]
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0]:
            if name:
                rows.append((name, vals.get("Rss", 0), vals.get("Private_Dirty", 0), vals.get("Private_Clean", 0)))
            name = f"{head[0]} {head[5] if len(head) > 5 else '[anon]'}"
            vals = {}
        elif len(head) >= 2 and head[0].endswith(":") and head[1].isdigit():
            vals[head[0][:-1]] = int(head[1])
    if name:
        rows.append((name, vals.get("Rss", 0), vals.get("Private_Dirty", 0), vals.get("Private_Clean", 0)))
    rows.sort(key=lambda r: -(r[2] + r[3]))
    return rows[:top]


def print_smaps(pid: int) -> None:
    print(f"smaps of shim {pid}: mapping, Rss / Private_Dirty / Private_Clean kB")
    for name, rss, pd, pc in smaps_breakdown(pid):
        print(f"  {rss:6d} {pd:6d} {pc:6d}  {name}")


def ksm_state() -> str:
    try:
        return {"0": "off", "1": "on", "2": "off (unmerging)"}.get(
            Path("/sys/kernel/mm/ksm/run").read_text().strip(), "unknown")
    except OSError:
        return "unavailable"


def make_rootfs(dest: Path) -> Path:
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", dest / "bin/busybox")
    for app in ("sh", "sleep", "true"):
        os.symlink("busybox", dest / "bin" / app)
    return dest


def config(rootfs: Path, cid: str) -> dict[str, object]:
    return {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["sleep", "100000"], "cwd": "/",
                    "env": ["PATH=/bin"], "noNewPrivileges": True},
        "root": {"path": str(rootfs), "readonly": True},
        "hostname": "bench",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
        "linux": {"cgroupsPath": f"/{CG_PARENT}/{cid}",
                  "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")]},
    }


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.02)


async def bench_ctrd(n: int, runtime: str, tmp: Path, rootfs: Path, smaps: bool = False) -> dict[str, object]:
    launcher = ShimLauncher(tmp / "er")
    await launcher.start()
    launch_ms: list[float] = []
    create_ms: list[float] = []
    shims: list[tuple[str, int, ShimClient]] = []
    stage_uss: dict[str, list[int]] = {}
    try:
        for i in range(n):
            cid = f"sb{os.getpid()}x{i}"
            bundle = tmp / "b" / cid
            bundle.mkdir(parents=True)
            (bundle / "config.json").write_text(json.dumps(config(rootfs, cid)))
            t0 = time.perf_counter()
            h = await launcher.launch(cid)
            c = await ShimClient.connect(h.address)
            if smaps:
                stage_uss.setdefault("listening", []).append(mem(h.pid)["uss"])
            await c.connect()  # the shim answers
            launch_ms.append((time.perf_counter() - t0) * 1000)
            if smaps:
                stage_uss.setdefault("connected", []).append(mem(h.pid)["uss"])
            shims.append((cid, h.pid, c))
            t1 = time.perf_counter()
            await c.create(shim_pb2.CreateRequest(id=cid, bundle=str(bundle), runtime=runtime,
                                                  log_path=str(tmp / "logs" / f"{cid}-json.log")))
            if smaps:
                stage_uss.setdefault("created", []).append(mem(h.pid)["uss"])
            await c.start()
            if smaps:
                stage_uss.setdefault("started", []).append(mem(h.pid)["uss"])
            create_ms.append((time.perf_counter() - t1) * 1000)
        await asyncio.sleep(1.0)
        print(f"ctrd-shim launch (fork from launcher, to first answer): p50 {pct(launch_ms, 50):.1f} ms, "
              f"p90 {pct(launch_ms, 90):.1f} ms;  create+start ({runtime or 'library'}): "
              f"p50 {pct(create_ms, 50):.1f} ms")
        mem_out = summary(f"ctrd-shim ({runtime or 'library'})", [p for _, p, _ in shims])
        print(f"KSM (/sys/kernel/mm/ksm/run): {ksm_state()}  (the shims' memory is mergeable: with KSM on, "
              "identical copied pages are merged back after a scan or two)")
        if smaps:
            uss = [mem(p)["uss"] for _, p, _ in shims]
            print("mean USS kB after each step: " + ", ".join(
                f"{k} {statistics.mean(v):.0f}" for k, v in stage_uss.items()))
            print(f"USS kB per shim in launch order: first {uss[0]}, middle {uss[len(uss) // 2]}, "
                  f"last {uss[-1]}, min {min(uss)}, max {max(uss)}")
            print_smaps(shims[len(shims) // 2][1])
            if launcher.pid is not None:
                print(f"launcher {launcher.pid}: {mem(launcher.pid)}")
        return {"launch_p50_ms": pct(launch_ms, 50), "launch_p90_ms": pct(launch_ms, 90),
                "create_start_p50_ms": pct(create_ms, 50), **mem_out}
    finally:
        for _, pid, c in shims:
            with contextlib.suppress(Exception):
                await c.shutdown()
            await c.close()
            wait_gone(pid)
        await launcher.close()
        for d in [*Path("/sys/fs/cgroup").glob(f"*/{CG_PARENT}/*"), *Path("/sys/fs/cgroup").glob(f"*/{CG_PARENT}")]:
            if d.is_dir():
                with contextlib.suppress(OSError):
                    d.rmdir()


def bench_containerd(n: int, tmp: Path, rootfs: Path) -> dict[str, object] | None:
    if not shutil.which("containerd") or not shutil.which("ctr"):
        print("containerd not installed: no comparison")
        return None
    d = tmp / "containerd"
    d.mkdir()
    addr = str(d / "c.sock")
    (d / "config.toml").write_text("\n".join([
        "version = 2", f'root = "{d / "root"}"', f'state = "{d / "state"}"',
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]', "[grpc]", f'  address = "{addr}"',
        "[ttrpc]", f'  address = "{addr}.ttrpc"', "[debug]", '  address = ""', "[metrics]", '  address = ""', ""]))
    log = open(d / "log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(["containerd", "--config", str(d / "config.toml")], stdout=log, stderr=log,
                            start_new_session=True)
    ctr = ["ctr", "-a", addr, "-n", "shimbench"]
    ids: list[str] = []
    try:
        for _ in range(200):
            if subprocess.run([*ctr, "version"], capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.1)
        run_ms: list[float] = []
        for i in range(n):
            cid = f"cb{os.getpid()}x{i}"
            t0 = time.perf_counter()
            subprocess.run([*ctr, "run", "-d", "--rootfs", str(rootfs), cid, "/bin/sleep", "100000"],
                           check=True, capture_output=True)
            run_ms.append((time.perf_counter() - t0) * 1000)
            ids.append(cid)
        time.sleep(1.0)
        shims = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                 and _comm(p) == "containerd-shim" and _is_ours(p, d)]
        print(f"ctr run -d: p50 {pct(run_ms, 50):.1f} ms")
        out = summary("containerd-shim-runc-v2", shims)
        return {"ctr_run_p50_ms": pct(run_ms, 50), **out}
    finally:
        for cid in ids:
            subprocess.run([*ctr, "task", "kill", "-s", "SIGKILL", cid], capture_output=True, check=False)
        for cid in ids:
            subprocess.run([*ctr, "task", "delete", "-f", cid], capture_output=True, check=False)
            subprocess.run([*ctr, "container", "delete", cid], capture_output=True, check=False)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for m in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            target = m.split()[4]
            if target.startswith(str(d)):
                subprocess.run(["umount", "-l", target], check=False)


def _comm(p: Path) -> str:
    try:
        return (p / "comm").read_text().strip()
    except OSError:
        return ""


def _is_ours(p: Path, d: Path) -> bool:
    try:
        return str(d) in (p / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100, help="running containers (default 100)")
    ap.add_argument("--runtime", default="", help='"" = the runtime library (the default, as ctrd runs it), else an OCI binary such as runc')
    ap.add_argument("--no-containerd", action="store_true")
    ap.add_argument("--smaps", action="store_true", help="print one shim's private pages per mapping")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ctrdb-", dir="/tmp"))
    try:
        rootfs = make_rootfs(tmp / "rootfs")
        results: dict[str, dict[str, object] | None] = {"ctrd": asyncio.run(bench_ctrd(args.n, args.runtime, tmp, rootfs, args.smaps))}
        if not args.no_containerd:
            results["containerd"] = bench_containerd(args.n, tmp, rootfs)
        print(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
