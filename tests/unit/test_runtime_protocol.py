"""The parent<->child setup protocol and the persisted state."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path

import pytest

from runtime import errors, state, sync


def test_packets_round_trip_and_errors_keep_their_type() -> None:
    a, b = sync.pair()
    with closing(a), closing(b):  # _socket objects (runtime.sync) are no context managers
        sync.send(b, sync.Packet(sync.Msg.READY))
        assert sync.recv(a) == sync.Packet(sync.Msg.READY)
        sync.send_error(b, "exec", 'exec: "x": executable file not found in $PATH', "exec-not-found")
        pkt = sync.recv(a)
        assert pkt is not None
        err = pkt.error()
        assert isinstance(err, errors.ExecError) and err.reason == "exec-not-found"
        b.close()
        assert sync.recv(a) is None  # EOF: the child exec'd or died


@pytest.mark.parametrize(("kind", "cls", "code"), [
    ("spec", errors.SpecError, "invalid_argument"),
    ("exec", errors.ExecError, "invalid_argument"),
    ("setup", errors.SetupError, "internal"),
    ("cgroup", errors.CgroupError, "internal"),
    ("launch-missiles", errors.SetupError, "internal"),
])
def test_each_error_kind_from_the_child_keeps_its_taxonomy_code(kind: str, cls: type[errors.RuntimeErr],
                                                                 code: str) -> None:
    """A spec error found in the child (e.g. a mount destination) is the caller's bad input, not internal."""
    err = errors.from_kind(kind, "config.json: mounts[0].destination: must be absolute", "")
    assert type(err) is cls and err.code == code
    assert err.message == "config.json: mounts[0].destination: must be absolute"  # not wrapped again


def test_spec_error_sent_by_the_child_arrives_as_a_spec_error() -> None:
    a, b = sync.pair()
    with closing(a), closing(b):  # _socket objects (runtime.sync) are no context managers
        sync.send_error(b, "spec", "config.json: process.cwd: must be absolute")
        pkt = sync.recv(a)
        assert pkt is not None
        err = pkt.error()
        assert isinstance(err, errors.SpecError) and err.code == "invalid_argument" and err.field == ""
        assert str(err) == "config.json: process.cwd: must be absolute"


def test_malformed_and_oversized_packets_are_protocol_errors() -> None:
    a, b = sync.pair()
    with closing(a), closing(b):  # _socket objects (runtime.sync) are no context managers
        b.send(b"not json")
        with pytest.raises(errors.SetupError, match="malformed"):
            sync.recv(a)
        b.send(b'{"type": "launch-missiles"}')
        with pytest.raises(errors.SetupError, match="malformed"):
            sync.recv(a)
        b.send(b"x" * (sync.MAX_PACKET + 10))
        with pytest.raises(errors.SetupError, match="too long"):
            sync.recv(a)


def test_error_message_is_bounded() -> None:
    a, b = sync.pair()
    with closing(a), closing(b):  # _socket objects (runtime.sync) are no context managers
        sync.send_error(b, "setup", "m" * 100_000)
        pkt = sync.recv(a)
        assert pkt is not None and len(pkt.message) == 4096


@pytest.mark.parametrize("bad", ["", "a/b", "..", "../x", "x/../y", ".hidden", "-x", "a" * 2000, "a b", "x..y"])
def test_bad_ids(bad: str) -> None:
    with pytest.raises(errors.InvalidID):
        state.check_id(bad)


@pytest.mark.parametrize("good", ["a", "abc-DEF_1.2", "0" * 64])
def test_good_ids(good: str) -> None:
    state.check_id(good)


def test_state_round_trip(tmp_path: Path) -> None:
    st = state.State(id="c1", pid=5, start_time=7, bundle="/b", rootfs="/b/rootfs", created="now", owner="root",
                     cgroup_kind="v1", cgroups_path="/ctrd/c1", annotations={"k": "v"})
    (tmp_path / "c1").mkdir()
    state.save(str(tmp_path), st)
    assert state.load(str(tmp_path), "c1") == st
    assert state.list_ids(str(tmp_path)) == ["c1"]
    with pytest.raises(errors.ContainerNotFound):
        state.load(str(tmp_path), "c2")


def test_proc_start_time() -> None:
    assert state.proc_start_time(os.getpid()) > 0
    assert state.proc_start_time(2**22 + 12345) == -1
