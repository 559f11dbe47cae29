"""The container record and its store: JSON round-trip, atomic commit point, id/name resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctrd.errdefs import AlreadyExists, InvalidArgument, NotFound
from ctrd.timefmt import ZERO_TIME, parse_rfc3339, rfc3339
from daemon.containers import record
from daemon.containers.record import (
    Config,
    Container,
    HostConfig,
    MountSpec,
    PortBinding,
    RestartPolicy,
    State,
)
from daemon.containers.state import Status
from daemon.containers.store import ContainerStore
from daemon.network.settings import NetworkSettings, PortMapping


def make(cid: str = "a" * 64, name: str = "web") -> Container:
    return Container(
        id=cid, name=name, created=1700000000.123456, path="sh", args=("-c", "echo hi"), image_id="sha256:" + "b" * 64,
        config=Config(hostname="h", image="busybox", env=("A=1",), cmd=("sh",), labels=(("k", "v"),),
                      stop_signal="SIGQUIT", stop_timeout=3, exposed_ports=("80/tcp",)),
        host_config=HostConfig(
            network_mode="none", port_bindings=(PortBinding(80, "tcp", "127.0.0.1", 8080),),
            mounts=(MountSpec("bind", "/data", "/src", True), MountSpec("tmpfs", "/t", options="size=1024")),
            memory=1 << 26, nano_cpus=10**9, pids_limit=50, restart_policy=RestartPolicy("on-failure", 2),
            cap_add=("CAP_NET_ADMIN",), dns=("1.1.1.1",), log_max_size=1000, log_max_file=2,
        ),
        state=State(Status.EXITED, 0, 3, "boom", True, 1700000001.5, 1700000002.25),
        restart_count=2, has_been_started_before=True, has_been_manually_stopped=True,
        network=NetworkSettings("bridge", "/run/x", "10.0.0.2", 16, "10.0.0.1", "02:42:0a:00:00:02", "ctrd0", "veth1",
                                [PortMapping("tcp", "127.0.0.1", 8080, 80)]),
        log_path="/l.json",
    )


def test_time_format() -> None:
    assert rfc3339(0) == ZERO_TIME and parse_rfc3339(ZERO_TIME) == 0
    t = 1700000000.123456
    assert abs(parse_rfc3339(rfc3339(t)) - t) < 1e-6
    assert rfc3339(t).endswith("Z") and len(rfc3339(t).split(".")[1]) == 10


def test_round_trip_through_json() -> None:
    c = make()
    doc = json.loads(json.dumps(record.to_json(c)))
    host = json.loads(json.dumps(record.host_config_to_json(c.host_config)))
    back = record.from_json(doc, host)
    for f in ("id", "name", "path", "args", "image_id", "config", "host_config", "restart_count",
              "has_been_started_before", "has_been_manually_stopped", "network", "log_path"):
        assert getattr(back, f) == getattr(c, f), f
    assert back.state.status is Status.EXITED and back.state.exit_code == 3 and back.state.oom_killed
    assert abs(back.state.finished_at - c.state.finished_at) < 1e-6
    assert doc["Name"] == "/web" and doc["State"]["Status"] == "exited" and host["Binds"] == ["/src:/data:ro"]


def test_network_settings_json_is_the_stored_shape() -> None:
    """config.v2.json keeps the network manager's keys; a container without a network stores {}."""
    c = make()
    assert record.to_json(c)["NetworkSettings"] == {
        "mode": "bridge", "sandbox_key": "/run/x", "ip_address": "10.0.0.2", "ip_prefix_len": 16,
        "gateway": "10.0.0.1", "mac_address": "02:42:0a:00:00:02", "bridge": "ctrd0", "veth_host": "veth1",
        "ports": [{"protocol": "tcp", "host_ip": "127.0.0.1", "host_port": 8080, "container_port": 80}],
    }
    c.network = None
    doc = record.to_json(c)
    assert doc["NetworkSettings"] == {}
    assert record.from_json(doc, record.host_config_to_json(c.host_config)).network is None


def test_store_commit_point_and_garbage(tmp_path: Path) -> None:
    s = ContainerStore(tmp_path)
    c = make()
    s.commit_new(c, s.stage_new(c)[0])
    half = tmp_path / "containers" / ("d" * 64)
    half.mkdir()
    (half / "hostconfig.json").write_text("{}")  # a create that crashed before config.v2.json
    loaded, garbage = ContainerStore(tmp_path).load_all()
    assert [x.id for x in loaded] == [c.id] and garbage == ["d" * 64] and not half.exists()
    assert not list((tmp_path / "containers" / c.id).glob(".*tmp*"))
    s.delete(c.id)
    assert not (tmp_path / "containers" / c.id).exists()


def test_detach_moves_the_record_out_at_once_and_a_start_deletes_what_a_crash_left(tmp_path: Path) -> None:
    s = ContainerStore(tmp_path)
    c = make()
    s.commit_new(c, s.stage_new(c)[0])
    (tmp_path / "containers" / c.id / f"{c.id}-json.log").write_text("{}\n")
    doomed = s.detach(c.id)
    # gone from its place (and from a reload) before anything is deleted; the data is the caller's
    assert doomed is not None and doomed.parent == tmp_path / "containers" and doomed.name.startswith(".rm-")
    assert not (tmp_path / "containers" / c.id).exists() and not s.id_taken(c.id)
    # one rename, the record with it (no unlink of config.v2.json, which would free a block)
    assert (doomed / "hostconfig.json").exists() and (doomed / "config.v2.json").exists()
    assert s.detach(c.id) is None  # nothing left to move
    # the daemon was killed before deleting it: the next load removes it and reports it
    loaded, garbage = ContainerStore(tmp_path).load_all()
    assert loaded == [] and garbage == [doomed.name] and not doomed.exists()


def test_detach_over_a_leftover_of_the_same_name_deletes_at_once(tmp_path: Path) -> None:
    s = ContainerStore(tmp_path)
    c = make()
    s.commit_new(c, s.stage_new(c)[0])
    left = tmp_path / "containers" / f".rm-{c.id}"
    left.mkdir()
    (left / "x").write_text("x")
    assert s.detach(c.id) is None
    assert not (tmp_path / "containers" / c.id).exists()


def test_resolution_by_id_name_and_prefix(tmp_path: Path) -> None:
    s = ContainerStore(tmp_path)
    a, b = make("ab" + "0" * 62, "one"), make("ac" + "0" * 62, "two")
    s.add(a)
    s.add(b)
    assert s.get(a.id) is a and s.get("one") is a and s.get("/two") is b and s.get("ab") is a
    with pytest.raises(InvalidArgument, match="multiple containers"):
        s.get("a")
    with pytest.raises(NotFound, match="no such container: zzz"):
        s.get("zzz")
    with pytest.raises(AlreadyExists, match='"/one" is already in use'):
        s.reserve_name("one")
    s.reserve_name("three")
    with pytest.raises(AlreadyExists):
        s.reserve_name("three")
    s.release_name("three")
    s.reserve_name("three")
    s.discard(a)
    with pytest.raises(NotFound):
        s.get("one")
