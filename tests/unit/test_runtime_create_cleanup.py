"""create_init's failure path: what it cannot undo is named with the setup error, never swallowed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime import cgroups, create, defaults, spawn
from runtime.errors import CgroupError, SetupError, SpecError


class StuckCgroup:
    kind = "v1"

    def __init__(self) -> None:
        self.destroyed = 0
        self.paths: dict[str, str] = {}

    def create(self, resources: Any) -> None:
        pass

    def destroy(self) -> None:
        self.destroyed += 1
        raise CgroupError("cgroup /ctrd-runtime/c1: rmdir memory: device or resource busy")


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    spec = defaults.default_spec(["true"])
    spec["linux"].pop("seccomp", None)
    (tmp_path / "config.json").write_text(json.dumps(spec))
    return tmp_path


def test_a_cgroup_left_after_a_failed_setup_is_named_with_the_error(
        bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cg = StuckCgroup()
    monkeypatch.setattr(cgroups, "for_path", lambda path: cg)

    def fail(*args: Any) -> None:
        raise SetupError("container c1: clone failed")

    # the cgroup is made after the fork (while the child sets up): a fork that "made" no
    # process, then a placement that fails
    monkeypatch.setattr(spawn, "fork_child", lambda *args: 0)
    monkeypatch.setattr(spawn, "place", fail)
    state_dir = tmp_path / "state"
    with pytest.raises(SetupError) as err:
        create.create_init(bundle, "c1", (0, 1, 2), state_dir=str(state_dir), fifo=False)
    assert cg.destroyed == 1
    assert str(err.value) == ("container c1: clone failed; cleanup also failed: "
                              "cgroup /ctrd-runtime/c1: rmdir memory: device or resource busy")
    assert list(state_dir.iterdir()) == []  # the state dir was still undone


def test_a_non_runtime_error_gets_the_leftover_as_a_note(
        bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "for_path", lambda path: StuckCgroup())

    def fail(*args: Any) -> None:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(spawn, "fork_child", lambda *args: 0)
    monkeypatch.setattr(spawn, "place", fail)
    with pytest.raises(OSError) as err:
        create.create_init(bundle, "c1", (0, 1, 2), state_dir=None, fifo=False)
    assert err.value.__notes__ == ["cleanup also failed: cgroup /ctrd-runtime/c1: rmdir memory: "
                                   "device or resource busy"]


def test_a_container_loaded_from_its_bundle_parses_config_json_once(
        bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shim's delete (and its other verbs) load the container from the bundle and the init's
    pid: the spec parsed for the cgroup path serves the hooks too (it was parsed twice, ~1 ms
    each with docker's seccomp profile, on every container's exit path)."""
    from runtime import container, spec

    spec_json = json.loads((bundle / "config.json").read_text())
    spec_json["hooks"] = {"poststop": [{"path": "/bin/true"}]}
    (bundle / "config.json").write_text(json.dumps(spec_json))
    parses: list[str] = []
    real = spec.load
    monkeypatch.setattr(spec, "load", lambda b: parses.append(b) or real(b))
    monkeypatch.setattr(cgroups, "for_path", lambda path: StuckCgroup())
    c = container.Container.load("c1", bundle=str(bundle), pid=None)
    assert c._has_hooks("poststop") and not c._has_hooks("poststart")
    assert parses == [str(bundle)]


@pytest.mark.parametrize("in_bundle", [False, True])
def test_a_terminal_the_caller_does_not_expect_is_refused_before_anything_is_made(
        bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_bundle: bool) -> None:
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = in_bundle
    (bundle / "config.json").write_text(json.dumps(spec))

    def forbidden(*args: Any) -> None:
        raise AssertionError("nothing may be made for a refused create")

    monkeypatch.setattr(cgroups, "for_path", forbidden)
    monkeypatch.setattr(spawn, "fork_child", forbidden)
    state_dir = tmp_path / "state"
    with pytest.raises(SpecError, match=f"config.json: process.terminal: the request says {not in_bundle}, "
                                        f"the bundle {bundle} says the opposite"):
        create.create_init(bundle, "c1", (0, 1, 2), state_dir=str(state_dir), fifo=False, terminal=not in_bundle)
    assert not state_dir.exists()
