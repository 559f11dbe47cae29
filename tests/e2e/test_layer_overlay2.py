"""The source document's overlay2 listings, on the layer store alone (root: real overlay mounts).

after create: overlay2/<id> and <id>-init with diff, link, lower, work; the -init tree; l/ links;
nothing in /proc/mounts. After mount: the overlay on <id>/merged with a lowerdir of l/ links.
After remove: all of it gone.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from ctrd import errdefs
from daemon.layers import mounts, overlay2
from daemon.layers.overlay2 import INIT_TEMPLATE, LayerStore

pytestmark = pytest.mark.root
VOLATILE = {"volatile", "fsync=volatile"}  # how /proc/mounts shows the option (6.x kernels: the latter)
CID = "361c520da78f848d639d65f042fcf5d448c13cbc4ce8c251dcba2250162b48fe"


def _mounts_mentioning(text: str) -> list[str]:
    with open("/proc/mounts") as f:
        return [line for line in f if text in line]


def _image_layers(store: LayerStore, count: int) -> list[str]:
    ids: list[str] = []
    for i in range(count):
        staging = store.new_staging()
        (staging / "diff" / f"f{i}").write_text(str(i))
        ids.append(store.commit(staging, ids[-1] if ids else None))
    return ids


def test_listings_create_mount_remove(short_tmp: Path) -> None:
    root = short_tmp / "overlay2"
    store = LayerStore(root)
    base, top = _image_layers(store, 2)
    links_before = set(os.listdir(root / "l"))

    store.create_container_layers(CID, top)
    init = root / f"{CID}-init"
    rw = root / CID
    for layer in (init, rw):
        assert {"diff", "link", "lower", "work"} <= set(os.listdir(layer))
        assert re.fullmatch(r"[A-Z2-7]{26}", (layer / "link").read_text())
        assert os.readlink(root / "l" / (layer / "link").read_text()) == f"../{layer.name}/diff"
    assert "committed" in os.listdir(init)  # docker marks a layer with children committed
    tree = subprocess.run(["find", "."], cwd=init / "diff", capture_output=True, text=True, check=True).stdout.split()
    assert set(tree) >= {
        "./dev", "./dev/console", "./dev/pts", "./dev/shm", "./etc", "./etc/hostname", "./etc/hosts",
        "./etc/mtab", "./etc/resolv.conf", "./proc", "./sys",
    }  # fmt: skip
    assert os.readlink(init / "diff" / "etc" / "mtab") == "/proc/mounts"
    # lower files: l/ names, nearest first
    rw_lower = (rw / "lower").read_text().split(":")
    expected = [f"l/{(root / x / 'link').read_text()}" for x in (f"{CID}-init", top, base)]
    assert rw_lower == expected
    assert len(set(os.listdir(root / "l")) - links_before) == 2
    assert not _mounts_mentioning(CID)
    assert not (rw / "merged").exists() or not store.is_mounted(CID)

    merged = store.mount(CID)
    try:
        assert merged == rw / "merged"
        assert store.is_mounted(CID)
        assert store.mount(CID) == merged  # idempotent
        lines = _mounts_mentioning(f"{CID}/merged")
        assert len(lines) == 1
        fields = lines[0].split()
        assert fields[2] == "overlay"
        opts = dict(o.partition("=")[::2] for o in fields[3].split(","))
        assert opts["lowerdir"] == ":".join(str(root / x) for x in expected)
        assert opts["upperdir"] == f"{rw}/diff" and opts["workdir"] == f"{rw}/work"
        assert (merged / "f0").read_text() == "0" and (merged / "f1").read_text() == "1"
        (merged / "written").write_text("cow")
        assert (rw / "diff" / "written").read_text() == "cow"
        assert not (store.diff_dir(top) / "written").exists()
        data = store.graph_data(CID)
        assert data["UpperDir"] == f"{rw}/diff" and data["MergedDir"] == str(merged)
        assert data["LowerDir"].split(":")[0] == f"{init}/diff"
    finally:
        detached = store.unmount(CID)
    assert detached  # it was mounted: umount says so, no mountinfo read needed
    assert not store.is_mounted(CID)
    assert not _mounts_mentioning(CID)
    assert store.unmount(CID) is False  # idempotent, and reports that nothing was mounted
    assert store.container_layer_ids() == {CID}

    store.remove_container_layers(CID)
    assert not rw.exists() and not init.exists()
    assert set(os.listdir(root / "l")) == links_before
    assert store.container_layer_ids() == set()
    store.remove_container_layers(CID)  # idempotent


def test_remove_while_mounted_unmounts(short_tmp: Path) -> None:
    store = LayerStore(short_tmp / "overlay2")
    (top,) = _image_layers(store, 1)
    store.create_container_layers("c1", top)
    store.mount("c1")
    store.remove_container_layers("c1")
    # the whole path: another engine's container on this host may have an id that ends in c1
    assert not _mounts_mentioning(f"{short_tmp}/overlay2/c1/merged")
    assert store.layer_ids() == {top}


@pytest.mark.skipif(not mounts.VOLATILE_SUPPORTED, reason="overlay's volatile option needs Linux 5.10")
def test_a_volatile_mount_and_the_next_mount_of_its_layer(short_tmp: Path) -> None:
    root = short_tmp / "overlay2"
    store = LayerStore(root)
    (top,) = _image_layers(store, 1)
    store.create_container_layers("v1", top)
    try:
        merged = store.mount("v1", volatile=True)
        (line,) = _mounts_mentioning(f"{root}/v1/merged")
        assert VOLATILE & set(line.split()[3].split(","))
        (merged / "written").write_text("kept")
        assert store.unmount("v1")
        assert (root / "v1" / "work" / "work" / "incompat" / "volatile").is_dir()  # the kernel's mark
        # overlay refuses a workdir with that mark: mount clears it (the same boot, a clean unmount)
        merged = store.mount("v1")
        (line,) = _mounts_mentioning(f"{root}/v1/merged")
        assert not VOLATILE & set(line.split()[3].split(","))
        assert (merged / "written").read_text() == "kept"
    finally:
        store.remove_container_layers("v1")
    assert not _mounts_mentioning(f"{root}/v1/merged")


def test_detach_takes_the_layers_out_at_once_and_the_next_store_deletes_what_is_left(short_tmp: Path) -> None:
    root = short_tmp / "overlay2"
    store = LayerStore(root)
    (top,) = _image_layers(store, 1)
    store.create_container_layers("c1", top)
    store.mount("c1")
    (root / "c1" / "diff" / "written").write_text("x")
    links = set(os.listdir(root / "l"))
    doomed = store.detach_container_layers("c1")
    # gone from the store at once: unmounted, no <id>/<id>-init, ids unlisted; their two links
    # dangle until dispose (their unlink frees a block: off the removal's path)
    assert not _mounts_mentioning(f"{root}/c1/merged")
    assert not (root / "c1").exists() and not (root / "c1-init").exists()
    dangling = set(os.listdir(root / "l")) - {n for n in links if os.path.exists(root / "l" / n)}
    assert len(dangling) == 2 and set(os.listdir(root / "l")) == links
    assert store.container_layer_ids() == set() and store.layer_ids() == {top}
    # the data is the caller's to delete, under names a start-up recognises as leftovers
    assert len(doomed) == 2 and all(d.parent == root and d.name.startswith(".staging-") for d in doomed)
    assert any((d / "diff" / "written").exists() for d in doomed)
    assert store.detach_container_layers("c1") == []  # idempotent
    LayerStore(root)  # a daemon that stopped before deleting them: the next start does
    assert not any(d.exists() for d in doomed) and set(os.listdir(root / "l")) == links - dangling
    assert sorted(os.listdir(root)) == sorted(["l", top, INIT_TEMPLATE])  # the template is the store's, not c1's


def test_detach_reads_mountinfo_only_when_merged_is_still_there(
        short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = short_tmp / "overlay2"
    store = LayerStore(root)
    (top,) = _image_layers(store, 1)
    reads: list[int] = []
    real = overlay2.mounts.mount_points
    monkeypatch.setattr(overlay2.mounts, "mount_points", lambda: reads.append(1) or real())
    store.create_container_layers("c1", top)
    store.mount("c1")
    assert len(store.detach_container_layers("c1")) == 2 and reads == []  # unmounted, merged gone
    # a second mount stacked on merged (by hand, or a mount propagated back): unmount takes the
    # top one, merged stays a mount point, and the layers are refused, not deleted through it
    store.create_container_layers("c2", top)
    merged = store.mount("c2")
    subprocess.run(["mount", "-t", "tmpfs", "stacked", str(merged)], check=True)
    try:
        with pytest.raises(errdefs.FailedPrecondition, match="is mounted"):
            store.detach_container_layers("c2")
        assert reads == [1] and (root / "c2").is_dir()
    finally:
        subprocess.run(["umount", "-l", str(merged)], check=False)
    store.remove_container_layers("c2")
    assert not _mounts_mentioning(f"{root}/c2/") and store.layer_ids() == {top}


def test_container_without_image_and_bad_ids(short_tmp: Path) -> None:
    store = LayerStore(short_tmp / "overlay2")
    store.create_container_layers("scratch", None)
    store.create_container_layers("scratch", None)  # idempotent
    merged = store.mount("scratch")
    try:
        assert sorted(os.listdir(merged)) == ["dev", "etc", "proc", "sys"]
    finally:
        store.remove_container_layers("scratch")
    for bad in ("../x", "a/b", "", "x-init"):
        with pytest.raises(errdefs.InvalidArgument):
            store.create_container_layers(bad, None)
    with pytest.raises(errdefs.NotFound):
        store.create_container_layers("c2", "0" * 64)
    with pytest.raises(errdefs.NotFound):
        store.mount("nope")


def test_long_lowerdir_mounts_with_relative_links(short_tmp: Path) -> None:
    # 125 image layers + init: absolute l/ paths exceed a page, so the relative form (forked mount) is used.
    store = LayerStore(short_tmp / "overlay2")
    ids = _image_layers(store, 125)
    cwd = os.getcwd()
    store.create_container_layers("deep", ids[-1])
    merged = store.mount("deep")
    try:
        assert os.getcwd() == cwd  # the daemon's cwd is never changed
        assert (merged / "f0").read_text() == "0" and (merged / "f124").read_text() == "124"
        line = _mounts_mentioning(f"{short_tmp}/overlay2/deep/merged")[0]
        assert "lowerdir=" in line
    finally:
        store.remove_container_layers("deep")
    # A layer may have at most 127 parents (overlay2's maxDepth of 128 lowers).
    parent = ids[-1]
    with pytest.raises(errdefs.InvalidArgument, match="max depth"):
        for _ in range(5):
            parent = store.commit(store.new_staging(), parent)
    assert len(store.parents(parent)) == 127


def test_leftovers_are_cleaned_on_start(short_tmp: Path) -> None:
    root = short_tmp / "overlay2"
    store = LayerStore(root)
    staging = store.new_staging()
    os.symlink("../gone/diff", root / "l" / ("A" * 26))
    LayerStore(root)
    assert not staging.exists()
    assert not (root / "l" / ("A" * 26)).is_symlink()


def test_concurrent_containers_on_one_image(short_tmp: Path) -> None:
    import threading

    store = LayerStore(short_tmp / "overlay2")
    (top,) = _image_layers(store, 1)
    errors: list[BaseException] = []

    def life(n: int) -> None:
        cid = f"par{n}"
        try:
            for _ in range(3):
                store.create_container_layers(cid, top)
                merged = store.mount(cid)
                (merged / "mine").write_text(cid)
                assert (merged / "f0").read_text() == "0"
                store.unmount(cid)
                assert (store.diff_dir(cid) / "mine").read_text() == cid
                store.remove_container_layers(cid)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=life, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.layer_ids() == {top} and store.container_layer_ids() == set()
    assert len(os.listdir(short_tmp / "overlay2" / "l")) == 1
    assert not _mounts_mentioning(str(short_tmp))
