"""Healthcheck records and merging, ps filters, rename/update checks, wait conditions (no root)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ctrd.errdefs import InvalidArgument
from ctrd.v1 import container_pb2 as pb
from daemon.containers import healthcheck, record, update, view
from daemon.containers.healthcheck import Healthcheck, HealthState, Probe
from daemon.containers.record import Container, State
from daemon.containers.state import Status
from daemon.containers.validate import DEFAULT_LOG_MAX_FILE, DEFAULT_LOG_MAX_SIZE, normalize
from tests.daemon_fakes import FakeImageConfig
from tests.unit.test_daemon_record import make

CID = "0123456789ab" + "c" * 52
IMAGE_HC = {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 5 * 10**9, "Retries": 7}


def norm(img: FakeImageConfig | None = None, **kw: Any) -> Any:
    return normalize(pb.ContainerSpec(image="busybox", **kw), "busybox", img or FakeImageConfig(), CID, ncpu=2)


def test_run_flags_merge_with_the_image_healthcheck() -> None:
    img = FakeImageConfig(healthcheck=IMAGE_HC)
    assert norm(img).config.healthcheck == Healthcheck(("CMD-SHELL", "wget -q localhost"), 5 * 10**9, retries=7)
    n = norm(img, healthcheck=pb.HealthConfig(timeout=2 * 10**9, retries=1))
    assert n.config.healthcheck == Healthcheck(("CMD-SHELL", "wget -q localhost"), 5 * 10**9, 2 * 10**9, 1)
    n = norm(img, healthcheck=pb.HealthConfig(test=["CMD", "true"]))
    assert n.config.healthcheck.test == ("CMD", "true") and n.config.healthcheck.retries == 7
    off = norm(img, no_healthcheck=True).config.healthcheck
    assert off == Healthcheck(("NONE",)) and not off.enabled
    assert norm().config.healthcheck is None


@pytest.mark.parametrize("kw, field", [
    ({"healthcheck": pb.HealthConfig(interval=5)}, "healthcheck.interval"),
    ({"healthcheck": pb.HealthConfig(test=["CMD-SHELL", "x"], timeout=-1)}, "healthcheck.timeout"),
    ({"healthcheck": pb.HealthConfig(test=["SHELL", "x"])}, "healthcheck.test"),
    ({"healthcheck": pb.HealthConfig(test=["CMD"])}, "healthcheck.test"),
    ({"healthcheck": pb.HealthConfig(retries=2)}, "healthcheck.test"),  # options without any command
    ({"healthcheck": pb.HealthConfig(test=["CMD-SHELL", "x"], retries=-1)}, "healthcheck.retries"),
    ({"no_healthcheck": True, "healthcheck": pb.HealthConfig(test=["CMD", "x"])}, "healthcheck"),
    ({"log_driver": "syslog"}, "log_driver"),
    ({"log_driver": "none", "log_max_size": "1m"}, "log_driver"),
])
def test_bad_healthcheck_and_log_options_name_their_field(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        norm(**kw)
    assert e.value.message.startswith(field + ":")


def test_default_log_cap_and_drivers() -> None:
    h = norm().host_config
    assert (h.log_driver, h.log_max_size, h.log_max_file) == ("json-file", DEFAULT_LOG_MAX_SIZE, DEFAULT_LOG_MAX_FILE)
    assert DEFAULT_LOG_MAX_SIZE * DEFAULT_LOG_MAX_FILE == 100 * 1024 * 1024
    h = norm(log_max_size="1m", log_max_file=2).host_config
    assert (h.log_max_size, h.log_max_file) == (1 << 20, 2)
    assert norm(log_max_size="1m").host_config.log_max_file == 1  # docker: max-file defaults to 1
    assert norm(log_driver="local").host_config.log_driver == "local"
    none = norm(log_driver="none").host_config
    assert (none.log_driver, none.log_max_size) == ("none", 0)
    js = record.host_config_to_json(norm(log_driver="local").host_config)
    assert js["LogConfig"] == {"Type": "local", "Config": {"max-size": str(DEFAULT_LOG_MAX_SIZE), "max-file": "5"}}
    assert record.host_config_from_json(js).log_driver == "local"


def test_health_state_round_trips_in_docker_shape() -> None:
    c = make()
    probe = Probe(1700000000.5, 1700000001.25, 1, "boom\n")
    c.config = dataclasses.replace(c.config, healthcheck=Healthcheck(("CMD", "true"), 10**9, 0, 2))
    c.state = dataclasses.replace(c.state, health=HealthState("unhealthy", 2, (probe,)))
    d = record.to_json(c)
    assert d["Config"]["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 10**9, "Retries": 2}
    h = d["State"]["Health"]
    assert h["Status"] == "unhealthy" and h["FailingStreak"] == 2
    assert h["Log"][0]["ExitCode"] == 1 and h["Log"][0]["Output"] == "boom\n"
    assert h["Log"][0]["Start"].startswith("2023-11-14T22:13:20.5")
    back = record.from_json(d, record.host_config_to_json(c.host_config))
    assert back.config.healthcheck == c.config.healthcheck
    assert back.state.health is not None and back.state.health.status == "unhealthy"
    assert back.state.health.log[0].exit_code == 1 and abs(back.state.health.log[0].end - probe.end) < 1e-6
    assert "Health" not in State().to_json()


def test_events_and_ps_suffix() -> None:
    s, h, u = HealthState("starting"), HealthState("healthy"), HealthState("unhealthy", 3)
    assert healthcheck.event(None, s) is None and healthcheck.event(s, h) == "health_status: healthy"
    assert healthcheck.event(h, h) is None and healthcheck.event(h, u) == "health_status: unhealthy"
    assert healthcheck.event(None, u) == "health_status: unhealthy"  # a change seen only after a restart
    c = running(make(), HealthState("starting"))
    assert view.status_text(c, now=c.state.started_at + 5) == "Up 5 seconds (health: starting)"
    c = running(make(), u)
    assert view.status_text(c, now=c.state.started_at + 5) == "Up 5 seconds (unhealthy)"
    assert view.status_text(running(make(), None), now=c.state.started_at + 5) == "Up 5 seconds"


def running(c: Container, health: HealthState | None) -> Container:
    c.state = dataclasses.replace(c.state, status=Status.RUNNING, started_at=1700000000.0, health=health)
    return c


def test_list_filters() -> None:
    a = make("a" * 64, "web")
    a.created = 100.0
    b = make("b" * 64, "db")
    b.created = 200.0
    b.state = dataclasses.replace(b.state, exit_code=0)
    running(a, HealthState("healthy"))
    a.host_config = dataclasses.replace(a.host_config, network_mode="app")
    by = {"web": a, "db": b}

    def m(c: Container, **f: str) -> bool:
        view.check_filters(f)
        return view.matches(c, f, by.get)

    assert m(a, health="healthy") and not m(b, health="healthy") and m(b, health="none")
    assert m(a, health="unhealthy\nhealthy")  # several values of one key: any
    assert m(b, exited="0") and not m(b, exited="3") and not m(a, exited="0")
    assert m(a, before="db") and not m(b, before="db") and m(b, since="web") and not m(a, since="nosuch")
    assert m(a, network="app") and not m(b, network="app") and m(b, network="none")
    assert m(a, volume="/src") and m(a, volume="/data") and not m(a, volume="/nope")
    assert m(a, ancestor="busybox") and m(a, ancestor="busybox:latest") is False
    a.config = dataclasses.replace(a.config, image="busybox:latest")
    assert m(a, ancestor="busybox") and m(a, ancestor="busybox:latest") and m(a, ancestor="bbbbbbbb")
    assert m(a, status="running", label="k=v") and not m(a, status="running", label="k=x")
    for bad in ({"health": "fine"}, {"exited": "x"}, {"colour": "red"}):
        with pytest.raises(InvalidArgument):
            view.check_filters(bad)


def test_update_checks_and_cgroup_values() -> None:
    c = make()
    req = pb.UpdateRequest(id=c.id, memory=64 << 20, nano_cpus=5 * 10**8, pids_limit=100)
    host, lim = update.check_update(c, req, ncpu=2)
    assert (host.memory, host.nano_cpus, host.pids_limit) == (64 << 20, 5 * 10**8, 100)
    assert (lim.memory, lim.nano_cpus, lim.pids_limit) == (64 << 20, 5 * 10**8, 100)
    host, lim = update.check_update(c, pb.UpdateRequest(memory=-1, pids_limit=-1), ncpu=2)
    assert (host.memory, lim.memory, lim.pids_limit) == (0, -1, -1) and host.pids_limit == -1
    host, lim = update.check_update(c, pb.UpdateRequest(restart_policy=pb.RestartPolicy(name="always")), ncpu=2)
    assert host.restart_policy.name == "always" and (lim.memory, lim.nano_cpus, lim.pids_limit) == (None, None, None)
    assert host.memory == c.host_config.memory  # untouched
    for bad, field in ((pb.UpdateRequest(memory=1024), "memory"), (pb.UpdateRequest(nano_cpus=3 * 10**9), "nano_cpus"),
                       (pb.UpdateRequest(restart_policy=pb.RestartPolicy(name="sometimes")), "restart_policy"),
                       (pb.UpdateRequest(restart_policy=pb.RestartPolicy(name="always", maximum_retry_count=2)),
                        "restart_policy.maximum_retry_count")):
        with pytest.raises(InvalidArgument) as e:
            update.check_update(c, bad, ncpu=2)
        assert e.value.message.startswith(field + ":")
    rm = make()
    rm.host_config = dataclasses.replace(rm.host_config, auto_remove=True, restart_policy=record.RestartPolicy())
    with pytest.raises(InvalidArgument, match="AutoRemove"):
        update.check_update(rm, pb.UpdateRequest(restart_policy=pb.RestartPolicy(name="always")), ncpu=2)


def test_log_attr_options() -> None:
    from daemon.containers import logopts

    n = norm(labels={"tier": "web", "team": "a"}, env=["REGION=eu", "SECRET=x", "APP_MODE=dev"],
             log_opts={"labels": "tier,missing", "env": "REGION", "env-regex": "^APP_"})
    h = n.host_config
    assert dict(h.log_opts) == {"labels": "tier,missing", "env": "REGION", "env-regex": "^APP_"}
    assert logopts.attrs(n.config, dict(h.log_opts)) == {"tier": "web", "REGION": "eu", "APP_MODE": "dev"}
    js = record.host_config_to_json(h)
    assert js["LogConfig"]["Config"]["labels"] == "tier,missing"
    assert record.host_config_from_json(js).log_opts == h.log_opts
    for opts, field in (({"colour": "x"}, "log_opts"), ({"env-regex": "("}, "log_opts")):
        with pytest.raises(InvalidArgument) as e:
            norm(log_opts=opts)
        assert e.value.message.startswith(field + ":")
    with pytest.raises(InvalidArgument, match="log_driver"):
        norm(log_driver="none", log_opts={"env": "A"})
