"""Top, stats, exec, events and resource limits on a real container."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ctrd.v1 import container_pb2 as pb
from ctrd.v1 import system_pb2 as spb
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401

pytestmark = pytest.mark.root


def test_top_stats_exec_events(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    t0 = time.time()
    cid = c.run("busybox", ["sleep", "300"], network_mode="none", memory=64 << 20, pids_limit=20, name="ops")
    top = c.call(c.containers, "Top", pb.TopRequest(id="ops"))
    assert list(top.titles) == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    rows = [list(p.values) for p in top.processes]
    assert [r[7] for r in rows] == ["sleep 300"] and rows[0][0] == "root"
    assert int(rows[0][1]) == c.inspect(cid)["State"]["Pid"]
    (stats,) = list(c.containers.Stats(pb.StatsRequest(id=cid, stream=False), timeout=20))
    assert stats.memory_limit == 64 << 20 and stats.pids_limit == 20 and stats.pids_current == 1
    assert stats.memory_usage > 0 and stats.name == "/ops"
    limit = Path("/sys/fs/cgroup/memory") / ctrd.cgroup_parent / cid / "memory.limit_in_bytes"
    assert int(limit.read_text()) == 64 << 20
    r = c.call(c.containers, "Exec", pb.ExecRequest(id=cid, args=["sh", "-c", "echo hi; hostname; exit 2"]))
    assert r.exit_code == 2 and r.stdout == f"hi\n{cid[:12]}\n".encode()
    c.remove(cid, force=True)
    events = list(c.system.Events(spb.EventsRequest(since=t0, until=time.time() + 0.1), timeout=10))
    actions = [e.action for e in events if e.id == cid]
    assert actions[:2] == ["create", "start"] and actions[-1] == "destroy"
    assert "die" in actions and "exec_die" in actions
    die = next(e for e in events if e.action == "die" and e.id == cid)
    assert die.attributes["exitCode"] == "137" and die.attributes["name"] == "ops"


def test_oom_kill_is_recorded(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    t0 = time.time()
    hog = "a=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived"
    cid = c.run("busybox", ["sh", "-c", hog], network_mode="none", memory=8 << 20)
    assert c.wait(cid, timeout=60) == 137
    state = c.inspect(cid)["State"]
    assert state["OOMKilled"] is True and state["Status"] == "exited"
    events = list(c.system.Events(spb.EventsRequest(since=t0, until=time.time() + 0.1), timeout=10))
    assert [e.action for e in events if e.id == cid][-2:] == ["oom", "die"]


def test_logs_follow_ends_when_the_container_stops(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    cid = c.run("busybox", ["sh", "-c", "echo a; sleep 1; echo b >&2; sleep 0.5"], network_mode="none")
    t0 = time.monotonic()
    got = c.logs(cid, follow=True)
    assert [(e.stream, e.data) for e in got] == [("stdout", b"a\n"), ("stderr", b"b\n")]
    assert time.monotonic() - t0 < 20
    assert c.inspect(cid)["State"]["Status"] == "exited"
    assert [e.data for e in c.logs(cid, tail=1)] == [b"b\n"]
