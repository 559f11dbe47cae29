"""Healthchecks run by the shim (also while ctrd is dead), the log cap and drivers, ps filters,
rename/update/port — against a real ctrd as root."""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from ctrd.v1 import container_pb2 as cpb
from ctrd.v1 import system_pb2 as spb
from daemon.shims.client import ShimClient
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_ctrctl_e2e import ctl

pytestmark = pytest.mark.root

S = 1_000_000_000
# a web server whose page the healthcheck fetches; removing the page makes it unhealthy
WEB = "mkdir -p /www && echo ok > /www/ok && exec httpd -f -p 80 -h /www"
PROBE = "wget -q -O - http://127.0.0.1:80/ok"


def until(d: DaemonProc, ref: str, pred: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        info = d.c.inspect(ref)
        if pred(info):
            return info
        assert time.monotonic() < deadline, f"not reached: {info['State']}"
        time.sleep(0.05)


def health(info: dict[str, Any]) -> dict[str, Any]:
    h: dict[str, Any] = info["State"]["Health"]
    return h


def events(d: DaemonProc, cid: str, since: float) -> list[str]:
    req = spb.EventsRequest(since=since, until=time.time(), filters={"container": cid})
    return [e.action for e in d.c.system.Events(req, timeout=30)]


def shim_health(d: DaemonProc, cid: str, after_seq: int) -> Any:
    """Ask the shim itself (the daemon is dead): its answer comes once a newer probe result exists."""
    async def ask() -> Any:
        client = await ShimClient.open(str(d.exec_root / "shims" / cid / "shim.sock"))
        try:
            return await asyncio.wait_for(client.health(after_seq), 60)
        finally:
            await client.close()

    return asyncio.run(ask())


def test_web_healthcheck_across_kill9_of_ctrd(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    since = time.time()
    hc = cpb.HealthConfig(test=["CMD-SHELL", PROBE], interval=S // 4, timeout=5 * S, retries=2)
    cid = c.run("busybox", ["sh", "-c", WEB], name="web", healthcheck=hc)
    assert health(c.inspect(cid))["Status"] in ("starting", "healthy")
    info = until(ctrd, cid, lambda i: health(i)["Status"] == "healthy")
    log = health(info)["Log"]
    assert log[-1]["ExitCode"] == 0 and log[-1]["Output"] == "ok\n" and log[-1]["End"] >= log[-1]["Start"]
    r = ctl(ctrd, "ps", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}")
    assert r.returncode == 0 and re.fullmatch(r"web Up .* \(healthy\)\n", r.stdout), (r.stdout, r.stderr)

    c.call(c.containers, "Exec", cpb.ExecRequest(id=cid, args=["rm", "/www/ok"]))
    info = until(ctrd, cid, lambda i: health(i)["Status"] == "unhealthy")
    h = health(info)
    assert h["FailingStreak"] >= 2 and h["Log"][-1]["ExitCode"] == 1 and len(h["Log"]) <= 5
    acts = events(ctrd, cid, since)
    assert "health_status: healthy" in acts and "health_status: unhealthy" in acts
    assert ctl(ctrd, "ps", "-q", "--filter", "health=unhealthy").stdout.strip() == cid[:12]

    streak = h["FailingStreak"]
    ctrd.kill9()
    # the daemon is dead: the shim keeps probing (the streak grows), and heals once the page is back
    seen = shim_health(ctrd, cid, 0)
    grown = shim_health(ctrd, cid, seen.seq)
    assert grown.status == "unhealthy" and grown.failing_streak > max(seen.failing_streak, streak - 1)
    merged = Path(c_merged := str(ctrd.root / "overlay2" / cid / "merged")) / "www" / "ok"
    assert Path(c_merged).is_dir()
    merged.write_text("ok\n")
    report = grown
    while report.status != "healthy":
        report = shim_health(ctrd, cid, report.seq)
    assert report.failing_streak == 0
    down_since = time.time()
    ctrd.start()
    c = ctrd.c
    info = until(ctrd, cid, lambda i: health(i)["Status"] == "healthy")
    h = health(info)
    assert h["FailingStreak"] == 0 and h["Log"][-1]["ExitCode"] == 0
    # the change that happened while the daemon was down is reported after its restart
    assert "health_status: healthy" in events(ctrd, cid, down_since)
    c.stop(cid, timeout=1)
    c.remove(cid)


def test_hanging_check_is_killed_at_its_timeout(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    hc = cpb.HealthConfig(test=["CMD", "sleep", "1000"], interval=S // 5, timeout=S * 3 // 10, retries=2)
    cid = c.run("busybox", ["sleep", "300"], network_mode="none", healthcheck=hc)
    info = until(ctrd, cid, lambda i: health(i)["FailingStreak"] >= 3)
    h = health(info)
    assert h["Status"] == "unhealthy"
    assert all(p["ExitCode"] == -1 and p["Output"] == "Health check exceeded timeout (300ms)" for p in h["Log"])
    # every killed probe is gone: at most the one running now is left
    top = c.call(c.containers, "Top", cpb.TopRequest(id=cid))
    hanging = [p for p in top.processes if p.values[-1] == "sleep 1000"]
    assert len(hanging) <= 1, [p.values for p in top.processes]
    # --no-healthcheck: no probes, no Health
    quiet = c.run("busybox", ["sleep", "300"], network_mode="none", no_healthcheck=True)
    assert "Health" not in c.inspect(quiet)["State"]
    assert c.inspect(quiet)["Config"]["Healthcheck"] == {"Test": ["NONE"]}
    for ref in (cid, quiet):
        c.remove(ref, force=True)


def _log_bytes(d: DaemonProc, cid: str) -> int:
    total = 0
    for p in (d.root / "containers" / cid).glob(f"{cid}-json.log*"):
        try:
            total += p.stat().st_size
        except FileNotFoundError:  # rotated away meanwhile
            pass
    return total


def test_a_container_logging_forever_stays_under_its_cap(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    line = "x" * 200
    cid = c.run("busybox", ["sh", "-c", f"while true; do echo {line}; done"], network_mode="none",
                log_max_size="64k", log_max_file=3)
    log = ctrd.root / "containers" / cid / f"{cid}-json.log"
    cap = 3 * 64 * 1024 + 16 * 1024 + 512  # the files, plus at most one more entry past max-size
    rotations = 0
    deadline = time.monotonic() + 120
    inode = None
    while inode is None:  # the log may be between a rotation's rename and its new file
        assert time.monotonic() < deadline, "the log never appeared"
        try:
            inode = log.stat().st_ino
        except FileNotFoundError:
            time.sleep(0.002)
    while rotations < 20:  # > 1 MiB written through a 192 KiB cap
        assert time.monotonic() < deadline, f"only {rotations} rotations"
        assert _log_bytes(ctrd, cid) <= cap
        try:
            now = log.stat().st_ino
        except FileNotFoundError:
            continue
        if now != inode:
            rotations, inode = rotations + 1, now
        time.sleep(0.002)  # a sample every few ms: a rotation missed in between only means more rounds
    c.stop(cid, timeout=1)
    files = sorted(p.name for p in log.parent.glob(f"{cid}-json.log*"))
    assert files == [f"{cid}-json.log", f"{cid}-json.log.1", f"{cid}-json.log.2"]
    assert _log_bytes(ctrd, cid) <= cap
    tail = c.logs(cid, tail=3)
    assert len(tail) == 3 and all(e.data == (line + "\n").encode() for e in tail)
    conf = c.inspect(cid)["HostConfig"]["LogConfig"]
    assert conf == {"Type": "json-file", "Config": {"max-size": str(64 * 1024), "max-file": "3"}}
    c.remove(cid)


def test_log_drivers_and_default_cap(ctrd: DaemonProc) -> None:  # noqa: F811
    r = ctl(ctrd, "run", "--network", "none", "--name", "deflt", "busybox", "echo", "hi")
    assert r.returncode == 0 and r.stdout == "hi\n"
    conf = ctrd.c.inspect("deflt")["HostConfig"]["LogConfig"]
    assert conf == {"Type": "json-file", "Config": {"max-size": str(20 << 20), "max-file": "5"}}
    r = ctl(ctrd, "logs", "--details", "--timestamps", "deflt")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\S+Z  hi\n", r.stdout), r.stdout  # no attrs: docker's lone space

    r = ctl(ctrd, "run", "--network", "none", "--name", "attrs", "-l", "tier=web", "-e", "REGION=eu",
            "--log-opt", "labels=tier", "--log-opt", "env=REGION,NOPE", "busybox", "echo", "hi")
    assert r.returncode == 0, r.stderr
    assert ctl(ctrd, "logs", "--details", "attrs").stdout == "REGION=eu,tier=web hi\n"
    assert ctl(ctrd, "logs", "attrs").stdout == "hi\n"

    r = ctl(ctrd, "run", "--network", "none", "--name", "local", "--log-driver", "local", "busybox", "echo", "there")
    assert r.returncode == 0
    assert ctl(ctrd, "logs", "local").stdout == "there\n"
    assert ctrd.c.inspect("local")["HostConfig"]["LogConfig"]["Type"] == "local"

    r = ctl(ctrd, "run", "-d", "--network", "none", "--name", "silent", "--log-driver", "none", "busybox",
            "sh", "-c", "echo lost")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert ctl(ctrd, "wait", "silent").stdout == "0\n"
    r = ctl(ctrd, "logs", "silent")
    assert r.returncode != 0 and "does not support reading" in r.stderr
    assert not (ctrd.root / "containers" / cid / f"{cid}-json.log").exists()
    r = ctl(ctrd, "run", "--log-driver", "syslog", "busybox", "true")
    assert r.returncode == 125 and "--log-driver" in r.stderr
    for name in ("deflt", "attrs", "local", "silent"):
        ctrd.c.remove(name)


def test_ps_filters_rename_update_port(ctrd: DaemonProc, tmp_path: Path) -> None:  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    r = ctl(ctrd, "run", "-d", "--name", "web", "-l", "tier=front", "-p", "127.0.0.1::80", "-v", f"{data}:/data",
            "busybox", "httpd", "-f", "-p", "80")
    assert r.returncode == 0, r.stderr
    web = r.stdout.strip()
    assert ctl(ctrd, "run", "--network", "none", "--name", "three", "busybox", "sh", "-c", "exit 3").returncode == 3
    assert ctl(ctrd, "run", "--network", "none", "--name", "zero", "busybox", "true").returncode == 0

    def names(*filters: str) -> list[str]:
        argv = ["ps", "-a", "--format", "{{.Names}}"]
        for f in filters:
            argv += ["--filter", f]
        r = ctl(ctrd, *argv)
        assert r.returncode == 0, r.stderr
        return sorted(r.stdout.split())

    assert names("exited=3") == ["three"] and names("exited=0") == ["zero"]
    assert names("exited=0", "exited=3") == ["three", "zero"]
    assert names("label=tier=front") == ["web"] and names("ancestor=busybox") == ["three", "web", "zero"]
    assert names("volume=/data") == ["web"] and names(f"volume={data}") == ["web"] and names("volume=/x") == []
    assert names("network=none") == ["three", "zero"] and names("network=bridge") == ["web"]
    assert names("before=zero") == ["three", "web"] and names("since=web") == ["three", "zero"]
    assert names("health=none", "status=running") == ["web"]
    assert names("name=^th") == ["three"]
    r = ctl(ctrd, "ps", "--filter", "exited=x")
    assert r.returncode == 125 and len(r.stderr.splitlines()) == 1
    r = ctl(ctrd, "ps", "-a", "--filter", "name=web", "--format",
            '{{.Label "tier"}}|{{.Mounts}}|{{.Networks}}|{{.State}}')
    shown = str(data) if len(str(data)) <= 15 else str(data)[:14] + "…"  # docker's ps truncates a mount to 15
    assert r.stdout == f"front|{shown}|bridge|running\n", r.stdout

    r = ctl(ctrd, "port", "web")
    m = re.fullmatch(r"80/tcp -> 127\.0\.0\.1:(\d+)\n", r.stdout)
    assert r.returncode == 0 and m, (r.stdout, r.stderr)
    assert ctl(ctrd, "port", "web", "80/tcp").stdout == f"127.0.0.1:{m.group(1)}\n"
    r = ctl(ctrd, "port", "web", "81")
    assert r.returncode == 1 and "No public port '81'" in r.stderr

    assert ctl(ctrd, "rename", "web", "site").returncode == 0
    assert ctrd.c.inspect(web)["Name"] == "/site" and names("name=site") == ["site"]
    r = ctl(ctrd, "rename", "site", "zero")
    assert r.returncode == 1 and "already in use" in r.stderr

    memory = Path("/sys/fs/cgroup/memory") / ctrd.cgroup_parent / web / "memory.limit_in_bytes"
    pids = Path("/sys/fs/cgroup/pids") / ctrd.cgroup_parent / web / "pids.max"
    cpu = Path("/sys/fs/cgroup/cpu,cpuacct") / ctrd.cgroup_parent / web / "cpu.cfs_quota_us"
    r = ctl(ctrd, "update", "-m", "64m", "--pids-limit", "50", "--cpus", "0.5", "--restart", "on-failure:2", "site")
    assert r.returncode == 0 and r.stdout == "site\n", r.stderr
    assert memory.read_text().strip() == str(64 << 20) and pids.read_text().strip() == "50"
    if cpu.exists():
        assert cpu.read_text().strip() == "50000"
    host = ctrd.c.inspect(web)["HostConfig"]
    assert (host["Memory"], host["PidsLimit"], host["NanoCpus"]) == (64 << 20, 50, 5 * 10**8)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert ctl(ctrd, "update", "--pids-limit", "-1", "site").returncode == 0
    assert pids.read_text().strip() == "max"
    r = ctl(ctrd, "update", "-m", "1k", "site")
    assert r.returncode == 1 and "memory" in r.stderr and memory.read_text().strip() == str(64 << 20)
    # the record keeps the new limits for the next start
    ctrd.c.stop(web, timeout=1)
    ctrd.c.start(web)
    assert memory.read_text().strip() == str(64 << 20)
    assert os.path.exists(str(memory))
    for name in ("site", "three", "zero"):
        ctrd.c.remove(name, force=True)
