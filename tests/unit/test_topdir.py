"""ext4's top-directory hint on the folders that hold one tree per container (daemon.topdir):
set by the layer store and the container store, not inherited, False where it cannot be set
(tests/e2e/test_layer_overlay2.py: on a tmpfs, which has no such flag)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctrd import libc
from daemon.containers.store import ContainerStore
from daemon.layers.overlay2 import LayerStore
from daemon.topdir import is_topdir, mark_topdir

EXT4_SUPER_MAGIC = 0xEF53


def _on_ext4(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return libc.fs_type(fd) == EXT4_SUPER_MAGIC
    finally:
        os.close(fd)


@pytest.fixture
def ext4_dir(tmp_path: Path) -> Path:
    if not _on_ext4(tmp_path):
        pytest.skip("the test's temporary directory is not on ext4")
    return tmp_path


def test_the_flag_is_set_once_and_not_inherited(ext4_dir: Path) -> None:
    d = ext4_dir / "containers"
    d.mkdir()
    assert not is_topdir(d)
    assert mark_topdir(d) and is_topdir(d)
    assert mark_topdir(d) and is_topdir(d)  # again: still set, nothing else changed
    child = d / "abc"
    child.mkdir()
    assert not is_topdir(child)  # only where the per-container trees start


def test_both_stores_mark_their_folders(ext4_dir: Path) -> None:
    LayerStore(ext4_dir / "overlay2")
    ContainerStore(ext4_dir).load_all()
    assert is_topdir(ext4_dir / "overlay2")
    assert is_topdir(ext4_dir / "containers")
    assert not is_topdir(ext4_dir / "overlay2" / "l")


def test_no_flag_where_there_is_none(tmp_path: Path) -> None:
    assert not mark_topdir(tmp_path / "missing")
    f = tmp_path / "file"
    f.write_text("x")
    assert not mark_topdir(f)  # not a directory
