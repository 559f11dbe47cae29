"""A removed container's layers are emptied to skeletons that the next creates reuse (root: real
overlay mounts, the kernel's own work/ and xattrs). What a container did to its layers never
reaches the next one: its files go, and a skeleton whose upper root it changed is deleted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.layers import mounts
from daemon.layers.overlay2 import INIT_TEMPLATE, SKELETONS, STAGING_PREFIX, LayerStore

pytestmark = pytest.mark.root


def _image(store: LayerStore) -> str:
    staging = store.new_staging()
    (staging / "diff" / "base").write_text("image")
    return store.commit(staging, None)


def _inodes(root: Path) -> set[int]:
    return {os.lstat(e.path).st_ino for e in os.scandir(root) if e.name.startswith(STAGING_PREFIX)}


def _run(store: LayerStore, cid: str, top: str | None, *, volatile: bool = False) -> Path:
    """create, mount, write into the container's rootfs, unmount, remove."""
    store.create_container_layers(cid, top)
    merged = store.mount(cid, volatile=volatile and mounts.VOLATILE_SUPPORTED)
    try:
        (merged / "written").write_text(cid)
        (merged / "etc" / "dir").mkdir()
        (merged / "base").unlink()  # a whiteout in the upper layer
    finally:
        store.unmount(cid)
    return merged


def test_a_new_container_gets_the_last_ones_emptied_layers(short_tmp: Path) -> None:
    root = short_tmp / "overlay2"
    store = LayerStore(root)
    top = _image(store)
    _run(store, "c1", top, volatile=True)
    store.remove_container_layers("c1")
    kept = _inodes(root)
    assert len(kept) == 2  # the pair, emptied
    store.create_container_layers("c2", top)
    assert {os.lstat(root / n).st_ino for n in ("c2", "c2-init")} == kept and not _inodes(root)
    rw, init = root / "c2", root / "c2-init"
    assert os.listdir(rw / "diff") == [] and os.listdir(rw / "work") == []
    assert os.readlink(init / "diff") == f"../{INIT_TEMPLATE}/diff"
    # written anew: the links name c2's layers, c2's lower is its own init layer
    for layer in (rw, init):
        assert os.readlink(root / "l" / (layer / "link").read_text()) == f"../{layer.name}/diff"
    assert (rw / "lower").read_text().split(":")[0] == f"l/{(init / 'link').read_text()}"
    assert len(os.listdir(root / "l")) == 3
    merged = store.mount("c2")  # a volatile mount's mark went with the skeleton's work/
    try:
        assert sorted(os.listdir(merged)) == sorted(["base", "dev", "etc", "proc", "sys"])
        assert (merged / "base").read_text() == "image" and not (merged / "etc" / "dir").exists()
    finally:
        store.unmount("c2")
    store.remove_container_layers("c2")
    # a skeleton is a cache: the next start-up deletes it with the other leftovers
    LayerStore(root)
    assert sorted(os.listdir(root)) == sorted(["l", top, INIT_TEMPLATE])


def test_a_changed_upper_root_is_deleted_not_reused(short_tmp: Path) -> None:
    root = short_tmp / "overlay2"
    store = LayerStore(root)
    top = _image(store)
    changes = {
        "mode": lambda m: os.chmod(m, 0o700),
        "owner": lambda m: os.chown(m, 1000, 1000),
        "xattr": lambda m: os.setxattr(m, "user.mark", b"1"),
    }
    for name, change in changes.items():
        store.create_container_layers(name, top)
        merged = store.mount(name)
        try:
            change(merged)  # on the container's `/`: overlay copies it to the upper root
        finally:
            store.unmount(name)
        store.remove_container_layers(name)
        # the init layer's skeleton is reusable, the read-write one was deleted
        assert [os.path.islink(e.path + "/diff") for e in os.scandir(root) if e.name.startswith(STAGING_PREFIX)] == [
            True], name
        store.create_container_layers("next", top)
        st = os.stat(root / "next" / "diff")
        assert (st.st_mode & 0o777, st.st_uid) == (0o755, 0) and not os.listxattr(root / "next" / "diff")
        store.remove_container_layers("next")
        LayerStore(root)  # empty the cache between cases
        store = LayerStore(root)


def test_a_skeleton_fits_a_layer_without_parent_and_the_cache_is_bounded(short_tmp: Path) -> None:
    root = short_tmp / "overlay2"
    store = LayerStore(root)
    top = _image(store)
    store.create_container_layers("c1", top)
    store.remove_container_layers("c1")
    store.create_container_layers("scratch", None)  # the init skeleton had a lower and a work/
    init = root / "scratch-init"
    assert sorted(os.listdir(init)) == ["committed", "diff", "link"]
    assert store.parents("scratch") == ["scratch-init"] and store.parents("scratch-init") == []
    merged = store.mount("scratch")
    try:
        assert sorted(os.listdir(merged)) == ["dev", "etc", "proc", "sys"]
    finally:
        store.unmount("scratch")
    store.remove_container_layers("scratch")
    names = [f"n{i}" for i in range(SKELETONS + 3)]
    for cid in names:
        store.create_container_layers(cid, top)
    for cid in names:
        store.remove_container_layers(cid)
    assert len(_inodes(root)) == 2 * SKELETONS
    assert len(os.listdir(root / "l")) == 1
