"""runtime.record.Record: the frozen value class State, Stats and Stdio use instead of dataclasses."""

from __future__ import annotations

import json

import pytest

from runtime.cgroupfs import Stats
from runtime.container import Stdio
from runtime.state import State


def _state(**kw: object) -> State:
    base: dict[str, object] = dict(id="c1", pid=10, start_time=5, bundle="/b", rootfs="/b/rootfs", created="t",
                                   owner="root", cgroup_kind="v1", cgroups_path="/x/c1")
    return State(**{**base, **kw})  # type: ignore[arg-type]


def test_equality_hash_repr_and_defaults() -> None:
    assert Stats() == Stats(0, 0, 0, 0, 0, 0)
    assert Stats(memory_usage=1) != Stats()
    assert hash(Stats(oom_kills=2)) == hash(Stats(oom_kills=2))
    assert Stats() != (0, 0, 0, 0, 0, 0)
    assert Stdio(0, 1, 2) == Stdio(stdin=0, stdout=1, stderr=2, console=-1)
    assert repr(Stdio(0, 1, 2)).startswith("Stdio(") and "console=-1" in repr(Stdio(0, 1, 2))
    st = _state()
    assert st.annotations == {} and st.hooks == {} and st.started is False and st.cgroup_root == ""
    assert _state().annotations is not st.annotations  # a fresh dict each, as default_factory


def test_frozen_and_replace() -> None:
    st = _state()
    with pytest.raises(AttributeError, match="frozen"):
        st.pid = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del st.pid  # type: ignore[misc]
    moved = st.replace(started=True)
    assert moved.started and not st.started and moved.id == st.id
    with pytest.raises(TypeError):
        st.replace(nosuch=1)


def test_state_round_trips_through_json() -> None:
    st = _state(annotations={"a": "b"}, hooks={"poststop": [{"path": "/bin/true"}]}, fifo=True)
    assert State(**json.loads(json.dumps(st.as_dict()))) == st
