"""runc's CLI surface that engines and people use, compared with runc 1.1 on the same bundle:
`--version`, `update` with runc's cpuset flags, `ps` (JSON pids, the host's ps filtered to the container, ps arguments), `events
--stats` (the same JSON keys) and the `events --interval` stream, which ends with the container."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.rootfs import make_busybox_rootfs, write_bundle

pytestmark = [pytest.mark.root, pytest.mark.skipif(shutil.which("runc") is None, reason="runc not installed")]

RUNTIMES = {"runc": ["runc"], "ctrd": [sys.executable, "-m", "runtime.cli"]}
# Go's omitempty in runc's types: present or not depending on the value, never on the runtime.
OMITEMPTY = {"cache", "usage", "max", "current", "limit", "total", "percpu", "percpu_kernel", "percpu_user",
             "periods", "throttledPeriods", "throttledTime", "cpus", "mems", "raw", "ioServiceBytesRecursive",
             "ioServicedRecursive"}


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ctrdt-vrfs-", dir="/tmp"))
    try:
        yield make_busybox_rootfs(d / "rootfs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Running:
    """One detached container per runtime, from the same bundle contents."""

    def __init__(self, tmp: Path, rootfs: Path) -> None:
        self.tmp = tmp
        self.rootfs = rootfs
        self.ids: dict[str, str] = {}

    def cli(self, runtime: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*RUNTIMES[runtime], "--root", str(self.tmp / runtime), *args], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=Path(__file__).parents[2])

    def start(self, runtime: str, args: list[str]) -> str:
        cid = f"v{runtime}{uuid.uuid4().hex[:8]}"

        def mutate(spec: dict[str, Any]) -> None:
            spec["linux"]["resources"] = {"memory": {"limit": 100_000_000}, "pids": {"limit": 50}}

        bundle = write_bundle(self.tmp / f"b-{cid}", args, self.rootfs, cgroups_path=f"/ctrd-rt-test/{cid}",
                              mutate=mutate)
        with open(self.tmp / f"{cid}.out", "w") as out:
            # A detached container keeps its stdio: never a pipe we would wait on.
            p = subprocess.run([*RUNTIMES[runtime], "--root", str(self.tmp / runtime), "run", "-d", "--bundle",
                                str(bundle), cid], stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=60,
                               cwd=Path(__file__).parents[2])
        assert p.returncode == 0, (self.tmp / f"{cid}.out").read_text()
        self.ids[runtime] = cid
        return cid


@pytest.fixture
def running(short_tmp: Path, rootfs: Path) -> Iterator[Running]:
    r = Running(short_tmp, rootfs)
    yield r
    for runtime, cid in r.ids.items():
        r.cli(runtime, "delete", "--force", cid)


def test_version_has_runcs_shape() -> None:
    for runtime, argv in RUNTIMES.items():
        p = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert re.fullmatch(r"\S+ version \S+", lines[0]), (runtime, lines)
        assert any(re.fullmatch(r"spec: 1\.\d+\.\d+\S*", line) for line in lines), (runtime, lines)


def test_ps_json_table_and_arguments_like_runc(running: Running) -> None:
    out: dict[str, dict[str, str]] = {}
    pids: dict[str, list[int]] = {}
    for runtime in RUNTIMES:
        cid = running.start(runtime, ["sh", "-c", "sleep 61 & exec sleep 62"])
        res = {}
        for name, args in {"json": ["ps", "-f", "json", cid], "table": ["ps", cid],
                           "args": ["ps", cid, "-o", "pid,comm"], "dashdash": ["ps", "--", cid, "-o", "pid,args"]}.items():
            p = running.cli(runtime, *args)
            assert p.returncode == 0, (runtime, name, p.stderr)
            res[name] = p.stdout
        out[runtime] = res
        pids[runtime] = json.loads(res["json"])
    for runtime, res in out.items():
        assert re.fullmatch(r"\[\d+,\d+\]\n", res["json"]), res["json"]  # Go's compact encoding
        table = res["table"].splitlines()
        assert table[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        assert sorted(int(line.split()[1]) for line in table[1:]) == sorted(pids[runtime])
        rows = res["args"].splitlines()
        assert rows[0].split() == ["PID", "COMMAND"] and sorted(r.split()[1] for r in rows[1:]) == ["sleep", "sleep"]
        assert sorted(r.split(None, 1)[1] for r in res["dashdash"].splitlines()[1:]) == ["sleep 61", "sleep 62"]
    # What runc refuses, refused the same way.
    for runtime in RUNTIMES:
        p = running.cli(runtime, "ps", running.ids[runtime], "-o", "comm")
        assert p.returncode == 1 and "couldn't find PID field in ps output" in p.stderr


def _keys(obj: Any, path: str = "") -> set[str]:
    if not isinstance(obj, dict):
        return set()
    out = set()
    for k, v in obj.items():
        if k in OMITEMPTY and not isinstance(v, dict):
            continue
        out.add(f"{path}.{k}")
        out |= _keys(v, f"{path}.{k}") if k != "raw" else set()
    return out


def test_events_stats_has_runcs_keys(running: Running) -> None:
    stats = {}
    for runtime in RUNTIMES:
        cid = running.start(runtime, ["sleep", "60"])
        p = running.cli(runtime, "events", "--stats", cid)
        assert p.returncode == 0, p.stderr
        assert p.stdout.count("\n") == 1 and ": " not in p.stdout  # one compact line
        ev = json.loads(p.stdout)
        assert (ev["type"], ev["id"]) == ("stats", cid)
        stats[runtime] = ev["data"]
    assert len(_keys(stats["runc"])) >= 30
    assert _keys(stats["ctrd"]) == _keys(stats["runc"])
    assert set(stats["ctrd"]["memory"]["raw"]) == set(stats["runc"]["memory"]["raw"])
    ours = stats["ctrd"]
    assert ours["memory"]["usage"]["limit"] == stats["runc"]["memory"]["usage"]["limit"]  # the same rounding
    assert ours["pids"] == {"current": 1, "limit": 50} == stats["runc"]["pids"]
    assert ours["cpuset"]["cpus"] == stats["runc"]["cpuset"]["cpus"] == list(range(os.cpu_count() or 1))
    assert ours["network_interfaces"] is None and ours["hugetlb"] == {}


def test_events_stream_ends_with_the_container(running: Running) -> None:
    cid = running.start("ctrd", ["sleep", "60"])
    p = running.cli("ctrd", "events", "--interval", "0s", cid)
    assert p.returncode == 1 and "duration interval must be greater than 0" in p.stderr
    proc = subprocess.Popen([*RUNTIMES["ctrd"], "--root", str(running.tmp / "ctrd"), "events", "--interval", "100ms",
                             cid], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert proc.stdout is not None
        for _ in range(2):
            ev = json.loads(proc.stdout.readline())
            assert (ev["type"], ev["id"]) == ("stats", cid) and ev["data"]["pids"]["current"] == 1
        assert running.cli("ctrd", "kill", cid, "KILL").returncode == 0
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    p = running.cli("ctrd", "events", "--stats", cid)
    assert p.returncode == 1 and f"container with id {cid} is not running" in p.stderr


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cpus")
def test_update_cpuset_flags_like_runc(running: Running) -> None:
    for runtime in RUNTIMES:
        cid = running.start(runtime, ["sleep", "60"])
        p = running.cli(runtime, "update", "--cpuset-cpus", "1", "--cpuset-mems", "0", cid)
        assert p.returncode == 0, (runtime, p.stderr)
        pid = json.loads(running.cli(runtime, "state", cid).stdout)["pid"]
        status = Path(f"/proc/{pid}/status").read_text()
        assert "Cpus_allowed_list:\t1\n" in status, runtime
        p = running.cli(runtime, "update", "--cpuset-cpus", "0-9999", cid)
        assert p.returncode != 0, runtime  # beyond the host: refused by both


def test_checkpoint_and_restore_say_they_are_not_supported() -> None:
    """runc's CRIU verbs: one clear line and exit 1, whatever runc options follow; an unknown
    option on any other verb is still a usage error."""
    for verb in (["checkpoint", "--image-path", "/nonexistent", "c1"], ["restore", "--bundle", ".", "c1"]):
        p = subprocess.run([*RUNTIMES["ctrd"], *verb], capture_output=True, text=True, timeout=30)
        assert p.returncode == 1
        assert p.stderr.strip() == f"ctrd-runtime: {verb[0]} is not supported: ctrd-runtime has no CRIU support"
    p = subprocess.run([*RUNTIMES["ctrd"], "state", "--bogus", "c1"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "unrecognized arguments: --bogus" in p.stderr
