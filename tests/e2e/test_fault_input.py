"""Fault suite, scenario 8: bad input through the gRPC API itself (garbage on the sockets:
test_fault_garbage.py).

- every malformed create is InvalidArgument naming its field, and creates nothing (no record,
  no layer, nothing listed); bad ids, signals and timeouts on the other verbs are refused too;
- a raw client sending bytes that do not parse gets InvalidArgument, not UNKNOWN;
- a hypothesis fuzz of CreateRequest: created (and removable) or refused with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ctrd.errdefs import CtrdError, InvalidArgument, NotFound
from ctrd.v1 import container_pb2 as cpb
from tests.fault_helpers import (  # noqa: F401
    FD_SLACK,
    FaultDaemon,
    consistency,
    fault_ctrd,
    fd_count,
    pid_alive,
    settle,
)

pytestmark = pytest.mark.root

GARBAGE = b"\xff\xff\xff\x0f" + bytes(range(256)) * 4


@pytest.fixture
def d(fault_ctrd: Callable[..., FaultDaemon]) -> FaultDaemon:  # noqa: F811
    return fault_ctrd()


def _nothing_created(d: FaultDaemon) -> None:
    assert d.c.list(all_=True) == []
    assert d.record_ids() == [] and d.container_layer_dirs() == [] and d.mounts() == []


BAD_SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("path-like name", {"name": "../../etc"}, "name"),
    ("slash name", {"name": "a/b"}, "name"),
    ("oversized name", {"name": "x" * 4096}, "name"),
    ("nul in name", {"name": "a\x00b"}, "name"),
    ("missing image", {"image": ""}, "image"),
    ("unknown image", {"image": "no-such-image"}, "image"),
    ("path-like image", {"image": "../../x"}, "reference"),
    ("1 MB variable", {"env": ["A=" + "x" * (1 << 20)]}, "env"),
    ("1 MB environment", {"env": [f"V{i}=" + "x" * 1000 for i in range(1100)]}, "env"),
    ("empty env key", {"env": ["=x"]}, "env"),
    ("signal name", {"stop_signal": "SIGNOPE"}, "stop_signal"),
    ("signal 0", {"stop_signal": "0"}, "stop_signal"),
    ("signal 65", {"stop_signal": "65"}, "stop_signal"),
    ("signal -1", {"stop_signal": "-1"}, "stop_signal"),
    ("negative stop timeout", {"stop_timeout": -5}, "stop_timeout"),
    ("absurd stop timeout", {"stop_timeout": 2**31 - 1}, "stop_timeout"),
    ("relative bind source", {"mounts": [cpb.Mount(type="bind", source="tmp", target="/x")]}, "mounts"),
    ("relative target", {"mounts": [cpb.Mount(type="bind", source="/tmp", target="x")]}, "mounts"),
    ("onto /proc", {"mounts": [cpb.Mount(type="bind", source="/tmp", target="/proc")]}, "mounts"),
    ("into /proc via ..", {"mounts": [cpb.Mount(type="bind", source="/tmp", target="/x/../proc/sys")]}, "mounts"),
    ("into /sys", {"mounts": [cpb.Mount(type="bind", source="/tmp", target="/sys/x")]}, "mounts"),
    ("missing source", {"mounts": [cpb.Mount(type="bind", source="/nonexistent-ctrd", target="/x")]}, "mounts"),
    ("unknown mount type", {"mounts": [cpb.Mount(type="weird", source="/tmp", target="/x")]}, "mounts"),
    ("unknown restart policy", {"restart_policy": cpb.RestartPolicy(name="sometimes")}, "restart_policy"),
    ("negative retries", {"restart_policy": cpb.RestartPolicy(name="on-failure", maximum_retry_count=-3)},
     "restart_policy"),
    ("negative memory", {"memory": -1}, "memory"),
    ("negative pids", {"pids_limit": -5}, "pids_limit"),
    ("unknown capability", {"cap_add": ["CAP_NOPE"]}, "cap_add"),
    ("unknown network", {"network_mode": "weird"}, "network_mode"),
    ("relative workdir", {"working_dir": "rel"}, "working_dir"),
    ("port 70000", {"port_bindings": [cpb.PortBinding(container_port=70000)]}, "port"),
    ("bad dns", {"dns": ["not-an-ip"]}, "dns"),
]


def test_bad_create_requests(d: FaultDaemon) -> None:
    for label, fields, word in BAD_SPECS:
        spec = cpb.ContainerSpec(image="busybox")
        spec.cmd.append("true")
        spec.cmd_set = True
        for k, v in fields.items():
            if isinstance(v, list):
                getattr(spec, k).extend(v)
            elif isinstance(v, cpb.RestartPolicy):
                spec.restart_policy.CopyFrom(v)
            else:
                setattr(spec, k, v)
        with pytest.raises(InvalidArgument) as exc:
            d.c.call(d.c.containers, "Create", cpb.CreateRequest(spec=spec))
        assert word in exc.value.message, (label, exc.value.message)
    with pytest.raises(InvalidArgument, match="image"):
        d.c.call(d.c.containers, "Create", cpb.CreateRequest())  # no spec at all
    _nothing_created(d)


def test_bad_ids_signals_and_timeouts(d: FaultDaemon) -> None:
    c = d.c
    cid = c.run("busybox", ["sleep", "300"], name="steady", network_mode="none", stop_timeout=1)
    pid = c.inspect(cid)["State"]["Pid"]
    for verb in (c.start, c.inspect, c.pause, c.resume, c.kill, c.remove):
        with pytest.raises(InvalidArgument, match="id"):
            verb("")
        for ref in ("../../etc/passwd", "/proc/self", "x" * 10000, "\x00"):
            with pytest.raises((NotFound, InvalidArgument)) as exc:
                verb(ref)
            assert exc.value.message
    for sig in ("SIGNOPE", "0", "65", "-1", "9999", "KILL9"):
        with pytest.raises(InvalidArgument, match="signal"):
            c.kill(cid, sig)
        with pytest.raises(InvalidArgument, match="signal"):
            c.stop(cid, timeout=1, signal=sig)
    for timeout in (-5, 10**9):
        with pytest.raises(InvalidArgument, match="timeout"):
            c.stop(cid, timeout=timeout)
    with pytest.raises(InvalidArgument, match="timeout"):
        c.call(c.containers, "Restart", cpb.RestartRequest(id=cid, timeout=-7))
    info = c.inspect(cid)
    assert info["State"]["Status"] == "running" and info["State"]["Pid"] == pid
    assert [x.id for x in c.list(all_=True)] == [cid]


def test_undecodable_requests_are_invalid_argument(d: FaultDaemon) -> None:
    channel = grpc.insecure_channel(f"unix:{d.address}")
    try:
        for method in ("Create", "Start", "Stop", "Kill", "Remove", "Inspect", "List", "Wait"):
            call = channel.unary_unary(f"/ctrd.v1.ContainerService/{method}")
            with pytest.raises(grpc.RpcError) as exc:
                call(GARBAGE, timeout=10)
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, exc.value.details())
            assert "malformed" in (exc.value.details() or "")
        logs = channel.unary_stream("/ctrd.v1.ContainerService/Logs")
        with pytest.raises(grpc.RpcError) as exc:
            list(logs(GARBAGE, timeout=10))
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        channel.close()
    _nothing_created(d)


# ------------------------------------------------------------------ fuzz

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_odd = st.sampled_from([
    "", "/", "..", "/proc", "/proc/sys", "/sys/x", "/tmp", "tmp", "\x00", "a" * 300, "-1", "0", "9", "9999",
    "SIGKILL", "TERM", "x:y", "1.2.3.4", "host", "none", "bridge", "container:nope", "always", "on-failure",
    "no", "unless-stopped", "10m", "root", "65534:65534", "CAP_NET_ADMIN", "ALL", "tcp", "udp", "web.1",
])
_s = st.one_of(_text, _odd)
_int32 = st.integers(-(2**31), 2**31 - 1)
_int64 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, -1, 6 << 20, 10**9, 2 * 10**9]))


@st.composite
def specs(draw: st.DrawFn) -> cpb.ContainerSpec:
    s = cpb.ContainerSpec(
        name=draw(st.one_of(_s, st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{1,20}\Z"))),
        image=draw(st.one_of(st.sampled_from(["busybox", "busybox:latest", "nope"]), _s)),
        cmd_set=draw(st.booleans()), entrypoint_set=draw(st.booleans()),
        working_dir=draw(_s), user=draw(_s), hostname=draw(_s), network_mode=draw(_s),
        publish_all=draw(st.booleans()), read_only_rootfs=draw(st.booleans()),
        memory=draw(_int64), nano_cpus=draw(_int64), pids_limit=draw(_int64),
        stop_signal=draw(_s), log_max_size=draw(_s), log_max_file=draw(_int32), auto_remove=draw(st.booleans()),
    )
    s.cmd.extend(draw(st.lists(_s, max_size=3)))
    s.entrypoint.extend(draw(st.lists(_s, max_size=2)))
    s.env.extend(draw(st.lists(st.one_of(_s, st.builds(lambda k, v: f"{k}={v}", _s, _s)), max_size=3)))
    s.labels.update(draw(st.dictionaries(_s, _s, max_size=2)))
    for _ in range(draw(st.integers(0, 2))):
        s.port_bindings.add(host_ip=draw(_s), host_port=draw(st.integers(0, 2**32 - 1)),
                            container_port=draw(st.integers(0, 2**32 - 1)), protocol=draw(_s))
    for _ in range(draw(st.integers(0, 2))):
        s.mounts.add(type=draw(st.one_of(st.sampled_from(["bind", "tmpfs"]), _s)), source=draw(_s),
                     target=draw(_s), read_only=draw(st.booleans()), options=draw(_s))
    s.cap_add.extend(draw(st.lists(_s, max_size=2)))
    s.cap_drop.extend(draw(st.lists(_s, max_size=2)))
    if draw(st.booleans()):
        s.stop_timeout = draw(_int32)
    s.restart_policy.name = draw(_s)
    s.restart_policy.maximum_retry_count = draw(_int32)
    s.extra_hosts.extend(draw(st.lists(_s, max_size=2)))
    s.dns.extend(draw(st.lists(_s, max_size=2)))
    return s


_ONE_FIELD: dict[str, Any] = {
    "name": _s, "working_dir": _s, "user": _s, "hostname": _s, "network_mode": _s, "stop_signal": _s,
    "log_max_size": _s, "memory": _int64, "nano_cpus": _int64, "pids_limit": _int64, "log_max_file": _int32,
    "stop_timeout": _int32,
}


@st.composite
def near_valid(draw: st.DrawFn) -> cpb.ContainerSpec:
    """A valid spec with one field (or one repeated entry) fuzzed: reaches each check alone."""
    s = cpb.ContainerSpec(image="busybox", network_mode="none", name=draw(st.from_regex(r"\Af[a-z0-9]{1,12}\Z")))
    s.cmd.append("true")
    s.cmd_set = True
    field = draw(st.sampled_from([*_ONE_FIELD, "env", "mount", "port", "cap", "restart", "dns", "host", "label"]))
    if field in _ONE_FIELD:
        setattr(s, field, draw(_ONE_FIELD[field]))
    elif field == "env":
        s.env.append(draw(st.builds(lambda k, v: f"{k}={v}", _s, _s)))
    elif field == "mount":
        s.mounts.add(type=draw(st.sampled_from(["bind", "tmpfs"])), source=draw(st.one_of(_s, st.just("/tmp"))),
                     target=draw(_s), options=draw(st.one_of(st.just(""), _s)))
    elif field == "port":
        s.port_bindings.add(host_ip=draw(st.one_of(st.just(""), _s)), host_port=draw(st.integers(0, 70000)),
                            container_port=draw(st.integers(0, 70000)), protocol=draw(st.sampled_from(["", "tcp", "udp", "x"])))
    elif field == "cap":
        s.cap_add.append(draw(_s))
    elif field == "restart":
        s.restart_policy.name = draw(_s)
        s.restart_policy.maximum_retry_count = draw(st.integers(-3, 5))
    elif field == "dns":
        s.dns.append(draw(_s))
    elif field == "host":
        s.extra_hosts.append(draw(_s))
    else:
        s.labels[draw(_s)] = draw(_s)
    return s


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec=st.one_of(specs(), near_valid()))
def test_fuzz_create_request(d: FaultDaemon, spec: cpb.ContainerSpec) -> None:
    c = d.c
    try:
        cid = str(c.call(c.containers, "Create", cpb.CreateRequest(spec=spec)).id)
    except InvalidArgument as exc:
        event(f"refused: {exc.message.split(':')[0]}")
        assert exc.message and not exc.message[0].isupper(), exc.message
        _nothing_created(d)
        return
    except NotFound as exc:  # docker's answer for network_mode container:<unknown>
        assert spec.network_mode.startswith("container:"), exc.message
        _nothing_created(d)
        return
    event("created")
    info = c.inspect(cid)
    assert info["State"]["Status"] == "created"
    assert cid in d.parse_metadata()
    c.remove(cid, force=True)
    _nothing_created(d)


def test_calls_on_a_removed_container_fail_cleanly(d: FaultDaemon) -> None:
    c = d.c
    cid = c.create("busybox", ["true"], network_mode="none")
    c.remove(cid)
    for verb in (c.start, c.inspect, c.kill, c.remove, c.pause):
        with pytest.raises(NotFound):
            verb(cid)
    with pytest.raises(CtrdError):
        c.wait(cid, timeout=5)
    _nothing_created(d)
