"""Prune filters, df's rows and sizes, cp's argument rules (no daemon)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from ctrctl.cmd_cleanup import human, summary
from ctrctl.cmd_files import split_arg
from ctrctl.hostcopy import rebase
from ctrd import errdefs
from daemon.cleanup.filters import PruneFilter
from daemon.cleanup.sizes import dir_size


def test_prune_filters() -> None:
    now = 10_000.0
    f = PruneFilter([("until", "1h"), ("label", "a=1"), ("label!", "b")], now=now)
    assert f.matches(now - 7200, {"a": "1"})
    assert not f.matches(now - 60, {"a": "1"})  # too new
    assert not f.matches(now - 7200, {"a": "2"})
    assert not f.matches(now - 7200, {"a": "1", "b": "x"})
    assert PruneFilter([("until", "1970-01-01T01:00:00Z")], now=now).until == 3600
    with pytest.raises(errdefs.InvalidArgument, match="invalid filter 'bogus'"):
        PruneFilter([("bogus", "1")])
    with pytest.raises(errdefs.InvalidArgument, match="until=yesterday"):
        PruneFilter([("until", "yesterday")])


def test_human_sizes_as_go_units() -> None:
    assert [human(x) for x in (0, 999, 1000, 4261000, 40_000_000, 124_123_456)] == [
        "0B", "999B", "1kB", "4.261MB", "40MB", "124.1MB"]


def test_df_rows() -> None:
    du = SimpleNamespace(
        layers_size=1000,
        images=[SimpleNamespace(size=600, shared_size=100, containers=1), SimpleNamespace(size=500, shared_size=100,
                                                                                          containers=0)],
        containers=[SimpleNamespace(size_rw=30, state="running"), SimpleNamespace(size_rw=10, state="exited")],
        volumes=[],
    )
    rows = summary(du)
    assert rows[0] == {"Type": "Images", "TotalCount": "2", "Active": "1", "Size": "1kB", "Reclaimable": "500B (50%)"}
    assert rows[1]["Reclaimable"] == "10B (25%)" and rows[1]["Active"] == "1"
    assert rows[2]["Size"] == "0B" and rows[3]["Type"] == "Build Cache"


def test_dir_size_counts_hardlinks_once(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 100)
    os.link(tmp_path / "a", tmp_path / "b")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c").write_bytes(b"y" * 10)
    os.symlink("a", tmp_path / "l")
    assert dir_size(str(tmp_path)) == 100 + 10 + 1


def test_cp_arguments() -> None:
    assert split_arg("web:/etc/hosts") == ("web", "/etc/hosts")
    assert split_arg("./a:b") == ("", "./a:b")
    assert split_arg("/tmp/x:y") == ("", "/tmp/x:y")
    assert split_arg("-") == ("", "-")
    assert rebase("src/x", "src", "dst") == "dst/x" and rebase("src", "src", "dst") == "dst"
    assert rebase("srcother/x", "src", "dst") == "srcother/x"


class _FakeClient:
    """The cleanup/network/volume stubs system prune calls, answering canned responses."""

    def __init__(self) -> None:
        from ctrd.v1 import cleanup_pb2, network_pb2, volume_pb2

        self.requests: list[tuple[str, object]] = []
        self.cleanup = SimpleNamespace(
            ContainerPrune=("ContainerPrune", cleanup_pb2.ContainerPruneResponse(deleted=["c1"], space_reclaimed=10)),
            ImagePrune=("ImagePrune", cleanup_pb2.ImagePruneResponse(space_reclaimed=0)))
        self.networks = SimpleNamespace(Prune=("NetworkPrune", network_pb2.NetworkPruneResponse()))
        self.volumes = SimpleNamespace(Prune=("VolumePrune", volume_pb2.VolumePruneResponse(
            removed=["anon1"], space_reclaimed=2000)))

    def call(self, method: tuple[str, object], request: object) -> object:
        self.requests.append((method[0], request))
        return method[1]


def test_system_prune_volumes_prunes_anonymous_ones(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from ctrctl import cmd_cleanup
    from ctrctl.errors import CliError

    fake = _FakeClient()
    monkeypatch.setattr(cmd_cleanup, "Client", lambda address: fake)
    args = SimpleNamespace(filter=["label=a"], force=True, all=True, volumes=True, address="")
    assert cmd_cleanup.system_prune(args) == 0  # type: ignore[arg-type]
    assert [name for name, _ in fake.requests] == ["ContainerPrune", "NetworkPrune", "VolumePrune", "ImagePrune"]
    vreq = fake.requests[2][1]
    assert not vreq.all and [(f.key, f.value) for f in vreq.filters] == [("label", "a")]  # type: ignore[attr-defined]
    assert capsys.readouterr().out == (
        "Deleted Containers:\nc1\n\nDeleted Volumes:\nanon1\n\nTotal reclaimed space: 2.01kB\n")
    with pytest.raises(CliError, match='"until" filter is not supported with "--volumes"'):
        cmd_cleanup.system_prune(SimpleNamespace(filter=["until=1h"], force=True, all=False, volumes=True,  # type: ignore[arg-type]
                                                 address=""))
    fake.requests.clear()
    cmd_cleanup.system_prune(SimpleNamespace(filter=[], force=True, all=False, volumes=False, address=""))  # type: ignore[arg-type]
    assert "VolumePrune" not in [name for name, _ in fake.requests]


def test_df_volumes_from_the_volume_store(tmp_path: Path) -> None:
    from daemon.cleanup.service import Cleanup, VolumeUse
    from daemon.volumes.store import VolumeStore

    store = VolumeStore(tmp_path)
    store.load()
    used, _ = store.create("used")
    store.create("idle")
    Path(used.mountpoint, "f").write_bytes(b"z" * 1234)
    store.users = lambda name: ["c1", "c2"] if name == "used" else []
    manager = SimpleNamespace(volumes=SimpleNamespace(store=store))
    c = Cleanup(manager, None, None)  # type: ignore[arg-type]
    assert c._volumes() == [VolumeUse("idle", "local", 0, 0), VolumeUse("used", "local", 1234, 2)]
    rows = summary(SimpleNamespace(layers_size=0, images=[], containers=[], volumes=c._volumes()))
    assert rows[2] == {"Type": "Local Volumes", "TotalCount": "2", "Active": "1", "Size": "1.234kB",
                       "Reclaimable": "0B (0%)"}
