"""Healthcheck state, events and recovery; wait conditions; rename; update; ps filters — through the
daemon's real gRPC socket, with fake shims whose healthcheck reports the test pushes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ctrd import errdefs
from ctrd.v1 import container_pb2 as pb
from tests.integration.test_daemon_api import Env, run

HC = pb.HealthConfig(test=["CMD-SHELL", "test -e /ok"], interval=10**9, retries=2)


async def started(env: Env, **kw: object) -> str:
    cid = await env.create("sleep", "100", **kw)
    await env.call("Start", pb.StartRequest(id=cid))
    return cid


async def listed(env: Env, **filters: str) -> list[str]:
    resp = await env.call("List", pb.ListRequest(all=True, filters=filters))
    return [c.names[0].lstrip("/") for c in resp.containers]


def test_health_state_events_and_ps(short_tmp: Path) -> None:
    async def body(env: Env) -> None:
        cid = await started(env, name="web", healthcheck=HC)
        plain = await started(env, name="plain")
        sent = env.shims.created[-2][1].health
        assert sent is not None and sent.test == ("CMD-SHELL", "test -e /ok") and sent.retries == 2
        assert env.shims.created[-1][1].health is None
        info = await env.inspect("web")
        assert info["State"]["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": []}
        assert info["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "test -e /ok"], "Interval": 10**9, "Retries": 2}
        assert "Health" not in (await env.inspect("plain"))["State"]
        resp = await env.call("List", pb.ListRequest(filters={"name": "web"}))
        assert resp.containers[0].status.endswith("(health: starting)")
        assert await listed(env, health="starting") == ["web"]
        assert await listed(env, health="none") == ["plain"]

        await env.shims.push_health(cid, "healthy")
        await env.event(cid, "health_status: healthy")
        info = await env.until("web", lambda i: i["State"]["Health"]["Status"] == "healthy")
        assert len(info["State"]["Health"]["Log"]) == 1
        assert (await env.call("List", pb.ListRequest(filters={"name": "web"}))).containers[0].status.endswith(
            "(healthy)")
        await env.shims.push_health(cid, "healthy", 1, 1)  # a failure below retries: no event
        await env.shims.push_health(cid, "unhealthy", 2, 1)
        await env.event(cid, "health_status: unhealthy")
        assert env.actions(cid).count("health_status: healthy") == 1
        info = await env.until("web", lambda i: i["State"]["Health"]["FailingStreak"] == 2)
        assert [p["ExitCode"] for p in info["State"]["Health"]["Log"]] == [0, 1, 1]
        assert await listed(env, health="unhealthy") == ["web"] and await listed(env, health="healthy") == []
        assert plain not in env.shims.health

    run(short_tmp, body)


def test_health_is_read_again_after_a_daemon_restart(short_tmp: Path) -> None:
    async def body(env: Env) -> None:
        cid = await started(env, name="web", healthcheck=HC)
        await env.shims.push_health(cid, "healthy")
        await env.until("web", lambda i: i["State"]["Health"]["Status"] == "healthy")
        await env.stop(live_restore=True)
        # while the daemon is down the shim keeps probing: two failures make it unhealthy
        await env.shims.push_health(cid, "healthy", 1, 1)
        await env.shims.push_health(cid, "unhealthy", 2, 1)
        await env.start()
        await env.event(cid, "health_status: unhealthy")  # the change it missed, reported on recovery
        info = await env.until("web", lambda i: i["State"]["Health"]["FailingStreak"] == 2)
        assert [p["ExitCode"] for p in info["State"]["Health"]["Log"]] == [0, 1, 1]
        await env.shims.push_health(cid, "healthy")
        await env.event(cid, "health_status: healthy")

    run(short_tmp, body)


def test_wait_conditions(short_tmp: Path) -> None:
    async def body(env: Env) -> None:
        created = await env.create("sleep", "100", name="cc")
        r = await env.call("Wait", pb.WaitRequest(id=created, condition="not-running"))
        assert r.exit_code == 0  # a created container is not running: answered at once
        with pytest.raises(errdefs.InvalidArgument):
            await env.call("Wait", pb.WaitRequest(id=created, condition="soon"))
        cid = await env.create("exit", "3", name="ee")
        await env.call("Start", pb.StartRequest(id=cid))
        await env.call("Wait", pb.WaitRequest(id=cid))
        # next-exit on an exited container waits for the next run's exit
        nxt = asyncio.ensure_future(env.call("Wait", pb.WaitRequest(id=cid, condition="next-exit")))
        removed = asyncio.ensure_future(env.call("Wait", pb.WaitRequest(id=cid, condition="removed")))
        await env.inspect(cid)  # a round trip after both: the daemon has them (one connection, in order)
        await env.call("Start", pb.StartRequest(id=cid))
        assert (await asyncio.wait_for(nxt, 20)).exit_code == 3
        assert not removed.done()
        await env.call("Remove", pb.RemoveRequest(id=cid))
        assert (await asyncio.wait_for(removed, 20)).exit_code == 3

    run(short_tmp, body)


def test_wait_removed_answers_when_the_auto_removal_fails(short_tmp: Path) -> None:
    """docker's Wait "removed" returns with the removal's error (`run --rm` waits on it: it must
    not hang when the removal fails)."""
    async def body(env: Env) -> None:
        cid = await env.create("exit", "5", auto_remove=True)
        env.layers.fail_detach.add(cid)
        removed = asyncio.ensure_future(env.call("Wait", pb.WaitRequest(id=cid, condition="removed")))
        await env.inspect(cid)  # a round trip after it: the daemon has the wait
        await env.call("Start", pb.StartRequest(id=cid))
        r = await asyncio.wait_for(removed, 20)
        assert r.exit_code == 5
        assert r.error.startswith(f"container {cid}: removal failed: ") and "Device or resource busy" in r.error
        assert (await env.inspect(cid))["Id"] == cid  # still there, to be removed again
        env.layers.fail_detach.clear()
        again = asyncio.ensure_future(env.call("Wait", pb.WaitRequest(id=cid, condition="removed")))
        await env.inspect(cid)
        assert not again.done()  # the next removal's outcome, not the last one's
        await env.call("Remove", pb.RemoveRequest(id=cid))
        r = await asyncio.wait_for(again, 20)
        assert r.exit_code == 5 and r.error == ""

    run(short_tmp, body)


def test_rename_update_and_filters(short_tmp: Path) -> None:
    async def body(env: Env) -> None:
        cid = await started(env, name="old", labels={"tier": "web"})
        other = await env.create("true", name="other")
        await env.call("Rename", pb.RenameRequest(id="old", name="new"))
        assert (await env.inspect(cid))["Name"] == "/new"
        assert next(e for e in env.events if e.id == cid and e.action == "rename").attributes["oldName"] == "/old"
        with pytest.raises(errdefs.NotFound):
            await env.inspect("old")
        with pytest.raises(errdefs.AlreadyExists):
            await env.call("Rename", pb.RenameRequest(id="new", name="other"))
        with pytest.raises(errdefs.InvalidArgument):
            await env.call("Rename", pb.RenameRequest(id="new", name="bad/name"))
        await env.call("Create", pb.CreateRequest(spec=pb.ContainerSpec(image="busybox", name="old",
                                                                         network_mode="none")))  # old is free
        await env.call("Update", pb.UpdateRequest(id="new", memory=64 << 20, pids_limit=99,
                                                  restart_policy=pb.RestartPolicy(name="always")))
        (ucid, lim), = env.shims.updates
        assert ucid == cid and (lim.memory, lim.nano_cpus, lim.pids_limit) == (64 << 20, None, 99)
        host = (await env.inspect(cid))["HostConfig"]
        assert (host["Memory"], host["PidsLimit"], host["RestartPolicy"]["Name"]) == (64 << 20, 99, "always")
        await env.call("Update", pb.UpdateRequest(id="other", nano_cpus=5 * 10**8))  # not running: record only
        assert len(env.shims.updates) == 1 and (await env.inspect(other))["HostConfig"]["NanoCpus"] == 5 * 10**8
        with pytest.raises(errdefs.InvalidArgument):
            await env.call("Update", pb.UpdateRequest(id="new", memory=1))
        assert await listed(env, before="new") == [] and sorted(await listed(env, since="new")) == ["old", "other"]
        assert await listed(env, label="tier=web", status="running") == ["new"]
        assert sorted(await listed(env, status="created\nrunning")) == ["new", "old", "other"]
        assert sorted(await listed(env, network="none")) == ["new", "old", "other"]
        assert await listed(env, network="bridge") == []

    run(short_tmp, body)
