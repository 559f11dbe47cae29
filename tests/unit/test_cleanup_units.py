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
