"""Bad archives: each one is refused, the host stays untouched (a canary outside the store), and no
partial image or layer remains (store state identical before and after)."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ctrd import errdefs
from daemon.images.store import ImageStore
from daemon.layers.overlay2 import LayerStore
from tests.fixtures import images as fx

pytestmark = pytest.mark.root

GOOD = fx.layer(fx.directory("etc"), fx.file("etc/passwd", b"root:x:0:0::/:/bin/sh\n"))
NEW = fx.layer(fx.file("fresh", b"a layer only the bad image has"))


def _walk(top: Path, skip: Path) -> dict[str, tuple[int, bytes]]:
    out = {}
    for dirpath, dirs, files in os.walk(top):
        if Path(dirpath) == skip.parent:
            dirs[:] = [d for d in dirs if Path(dirpath, d) != skip]
        for name in dirs + files:
            p = Path(dirpath, name)
            st = p.lstat()
            out[str(p)] = (st.st_mode, p.read_bytes() if p.is_file() and not p.is_symlink() else b"")
    return out


def _store_state(root: Path) -> dict[str, object]:
    meta = root / "image/overlay2"
    return {
        "overlay2": sorted(os.listdir(root / "overlay2")),
        "l": sorted(os.listdir(root / "overlay2/l")),
        "layerdb": sorted(os.listdir(meta / "layerdb/sha256")),
        "layerdb-tmp": os.listdir(meta / "layerdb/tmp"),
        "content": sorted(os.listdir(meta / "imagedb/content/sha256")),
        "repos": (meta / "repositories.json").read_text(),
        "tmp": os.listdir(meta / "tmp"),
    }


def _cases(canary: Path) -> dict[str, Callable[[], bytes]]:
    host = str(canary.parent)
    one = fx.docker_save

    def layers(*entries: fx.Entry) -> bytes:
        return one([GOOD, NEW, fx.layer(*entries)], tags=["bad:1"])

    many = [fx.layer(fx.file(f"f{i}")) for i in range(126)]
    gz = gzip.compress(GOOD + b"")
    return {
        "dotdot": lambda: layers(fx.file("../../../../canary", b"pwned")),
        "dotdot-inner": lambda: layers(fx.directory("a"), fx.file("a/../../../canary", b"pwned")),
        "absolute": lambda: layers(fx.file(str(canary), b"pwned")),
        "symlink-abs-then-write": lambda: layers(fx.symlink("evil", host), fx.file("evil/canary", b"pwned")),
        "symlink-rel-then-write": lambda: layers(
            fx.symlink("evil", "../../../../../../../.."), fx.file(f"evil{canary}", b"pwned")
        ),
        "symlink-then-mkdir": lambda: layers(fx.symlink("evil", host), fx.directory("evil/newdir")),
        "symlink-then-hardlink": lambda: layers(fx.file("t"), fx.symlink("evil", host), fx.hardlink("evil/x", "t")),
        "hardlink-relative-out": lambda: layers(fx.hardlink("h", "../../../../canary")),
        "hardlink-absolute": lambda: layers(fx.hardlink("h", str(canary))),
        "hardlink-not-in-layer": lambda: layers(fx.hardlink("h", "etc/passwd")),
        "hardlink-through-symlink": lambda: layers(fx.symlink("evil", host), fx.hardlink("h", "evil/canary")),
        "char-device": lambda: layers(fx.device("null", tarfile.CHRTYPE, 1, 3)),
        "block-device": lambda: layers(fx.device("sda", tarfile.BLKTYPE, 8, 0)),
        "whiteout-root": lambda: layers(fx.file(".wh..")),
        "whiteout-parent": lambda: layers(fx.directory("etc"), fx.file("etc/.wh...")),
        "whiteout-empty": lambda: layers(fx.file(".wh.")),
        "oci-layer-digest-mismatch": lambda: fx.oci_archive(
            [GOOD, NEW], blob_override={1: gzip.compress(fx.layer(fx.file("other")))}
        ),
        "docker-diffid-mismatch": lambda: one(
            [GOOD, NEW], cfg_bytes=fx.config([fx.sha(GOOD), fx.sha(fx.layer(fx.file("other")))])
        ),
        "truncated-gzip": lambda: one(
            [GOOD, gzip.compress(NEW)[:-30]], cfg_bytes=fx.config([fx.sha(GOOD), fx.sha(NEW)])
        ),
        "garbage-layer": lambda: one([GOOD, b"\x1f\x8b" + b"junk" * 100], cfg_bytes=fx.config([fx.sha(GOOD), fx.sha(NEW)])),
        "missing-blob": lambda: one(
            [GOOD],
            manifest=[{"Config": "blobs/sha256/" + "1" * 64, "RepoTags": ["bad:1"], "Layers": ["blobs/sha256/" + fx.sha(GOOD)[7:]]}],
        ),
        "missing-layer-blob": lambda: _without(fx.oci_archive([GOOD, NEW]), "blobs/sha256/" + fx.sha(gzip.compress(NEW, mtime=0))[7:]),
        "config-not-json": lambda: one([GOOD, NEW], cfg_bytes=b"{this is not json"),
        "config-not-object": lambda: one([GOOD, NEW], cfg_bytes=b"[1, 2]"),
        "config-bad-digest": lambda: one([GOOD], cfg_bytes=fx.config(["sha256:../../etc"])),
        "manifest-not-json": lambda: _replace(one([GOOD], tags=["bad:1"]), "manifest.json", b"nope"),
        "layer-count-mismatch": lambda: one([GOOD, NEW], cfg_bytes=fx.config([fx.sha(GOOD)])),
        "too-many-layers": lambda: one(many, tags=["bad:1"]),
        "invalid-name-chars": lambda: one([GOOD, NEW], tags=["Bad Name!:x"]),
        "invalid-name-upper": lambda: one([GOOD, NEW], tags=["UPPER/case:1"]),
        "invalid-tag": lambda: one([GOOD, NEW], tags=["ok:bad tag"]),
        "not-an-archive": lambda: b"hello, this is not a tar",
        "empty-archive": lambda: fx.layer(),
        "truncated-archive": lambda: (lambda a: a[: len(a) // 2])(one([GOOD, NEW], tags=["bad:1"])),
        "gzip-archive-truncated": lambda: gzip.compress(one([GOOD, NEW], tags=["bad:1"]))[:-100],
        "bad-volume": lambda: one([GOOD, NEW], cfg_bytes=fx.config([fx.sha(GOOD), fx.sha(NEW)], {"Volumes": {"/../../etc/shadow": {}}})),
        "gzip-bomb-ish-junk": lambda: one([GOOD, gz + b"trailing junk"], cfg_bytes=fx.config([fx.sha(GOOD), fx.sha(GOOD)])),
    }


def _rewrite(archive: bytes, name: str, data: bytes | None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive)) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for m in src.getmembers():
            if m.name == name:
                if data is None:
                    continue
                m.size = len(data)
                dst.addfile(m, io.BytesIO(data))
            else:
                dst.addfile(m, src.extractfile(m))
    return out.getvalue()


def _without(archive: bytes, name: str) -> bytes:
    return _rewrite(archive, name, None)


def _replace(archive: bytes, name: str, data: bytes) -> bytes:
    return _rewrite(archive, name, data)


CASES = list(_cases(Path("/x/canary")))


@pytest.mark.parametrize("case", CASES)
def test_bad_archive_is_refused_cleanly(short_tmp: Path, case: str) -> None:
    canary = short_tmp / "canary"
    canary.write_bytes(b"canary")
    canary.chmod(0o600)
    root = short_tmp / "root"
    layers = LayerStore(root / "overlay2")
    store = ImageStore(root, layers)
    store.load_archive(io.BytesIO(fx.docker_save([GOOD], tags=["good:1"])))
    host_before = _walk(short_tmp, root)
    state_before = _store_state(root)
    data = _cases(canary)[case]()

    with pytest.raises(errdefs.InvalidArgument):
        store.load_archive(io.BytesIO(data))

    assert canary.read_bytes() == b"canary" and canary.stat().st_mode & 0o777 == 0o600
    assert _walk(short_tmp, root) == host_before
    assert _store_state(root) == state_before
    assert [i.repo_tags for i in store.list()] == [["good:1"]]
    # and a restarted store agrees
    assert [i.repo_tags for i in ImageStore(root, LayerStore(root / "overlay2")).list()] == [["good:1"]]


def test_hardlink_to_symlink_then_chmod_leaves_host_modes(short_tmp: Path) -> None:
    # CVE-2021-32760: a hardlink to a symlink to a host file, then an entry that sets its mode.
    canary = short_tmp / "canary"
    canary.write_bytes(b"canary")
    canary.chmod(0o600)
    root = short_tmp / "root"
    store = ImageStore(root, LayerStore(root / "overlay2"))
    ti, _ = fx.file("h", b"", 0o777)
    bad = fx.layer(fx.symlink("s", str(canary)), fx.hardlink("h", "s"), (ti, b""))
    try:
        store.load_archive(io.BytesIO(fx.docker_save([bad], tags=["cve:1"])))
    except errdefs.InvalidArgument:
        pass
    assert canary.stat().st_mode & 0o777 == 0o600 and canary.read_bytes() == b"canary"


def test_import_refuses_bad_names_and_changes_before_reading(short_tmp: Path) -> None:
    root = short_tmp / "root"
    store = ImageStore(root, LayerStore(root / "overlay2"))

    class Exploding(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            raise AssertionError("read before validation")

    for ref, changes in (("a b", []), ("UPPER", []), ("x:", []), ("ok", ["FROM scratch"]), ("ok", ["EXPOSE 99999"])):
        with pytest.raises(errdefs.InvalidArgument):
            store.import_archive(Exploding(), ref, changes)
    state = _store_state(root)
    with pytest.raises(errdefs.InvalidArgument):
        store.import_archive(io.BytesIO(gzip.compress(GOOD)[:-10]), "trunc:1")
    assert _store_state(root) == state


def test_opaque_whiteout_and_whiteout_over_lower(short_tmp: Path) -> None:
    root = short_tmp / "root"
    layers = LayerStore(root / "overlay2")
    store = ImageStore(root, layers)
    lower = fx.layer(fx.directory("d"), fx.file("d/a"), fx.file("d/b"), fx.file("gone"), fx.directory("dir2"), fx.file("dir2/x"))
    upper = fx.layer(fx.directory("d"), fx.file("d/.wh..wh..opq"), fx.file("d/c"), fx.file(".wh.gone"), fx.file(".wh.dir2"))
    store.load_archive(io.BytesIO(fx.oci_archive([lower, upper], ref="op:1")))
    image = store.get("op:1")
    diff = layers.diff_dir(image.top_layer or "")
    assert os.getxattr(diff / "d", "trusted.overlay.opaque") == b"y"
    st = os.lstat(diff / "gone")
    assert os.major(st.st_rdev) == 0 and os.minor(st.st_rdev) == 0 and (st.st_mode & 0o170000) == 0o020000
    layers.create_container_layers("op", image.top_layer)
    merged = layers.mount("op")
    try:
        assert sorted(os.listdir(merged / "d")) == ["c"]
        assert not (merged / "gone").exists() and not (merged / "dir2").exists()
    finally:
        layers.remove_container_layers("op")
    assert json.loads((root / "image/overlay2/repositories.json").read_text())["Repositories"]["op"]
