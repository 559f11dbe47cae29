"""Image store end to end (root: whiteouts are char devices, xattrs are trusted.*, overlay mounts)."""

from __future__ import annotations

import gzip
import io
import json
import os
import threading
from pathlib import Path

import pytest

from ctrd import errdefs
from daemon.images import view as image_view
from daemon.images.store import ImageStore
from daemon.layers.overlay2 import LayerStore
from tests.fixtures import images as fx

pytestmark = pytest.mark.root


def _stores(root: Path) -> tuple[LayerStore, ImageStore]:
    layers = LayerStore(root / "overlay2")
    return layers, ImageStore(root, layers)


@pytest.fixture
def env(short_tmp: Path) -> tuple[Path, LayerStore, ImageStore]:
    root = short_tmp / "root"
    layers, store = _stores(root)
    return root, layers, store


def _run_in(layers: LayerStore, top: str | None, cid: str) -> Path:
    layers.create_container_layers(cid, top)
    return layers.mount(cid)


@pytest.mark.parametrize("name", ["whiteout-oci.tar", "whiteout-docker.tar"])
def test_real_tool_fixture_loads_and_whiteout_hides_file(env: tuple[Path, LayerStore, ImageStore], name: str) -> None:
    _root, layers, store = env
    with open(fx.FIXTURES / name, "rb") as f:
        assert store.load_archive(f) == ["Loaded image: whiteout:v1"]
    image = store.get("whiteout:v1")
    assert image.config.cmd == ["/hello.txt"] and image.config.labels == {"fixture": "whiteout"}
    assert len(image.diff_ids) == 2
    merged = _run_in(layers, image.top_layer, "c1")
    try:
        assert (merged / "hello.txt").read_text() == "hello from the base layer\n"
        assert (merged / "new.txt").exists()
        assert (merged / "data" / "keep.txt").exists()
        assert not (merged / "etc" / "secret").exists()
        assert not (merged / "data" / "old.txt").exists()
        base = layers.parents(image.top_layer)[0]
        assert (layers.diff_dir(base) / "etc" / "secret").exists()  # still in the lower layer
    finally:
        layers.remove_container_layers("c1")


def test_both_formats_share_layers(env: tuple[Path, LayerStore, ImageStore]) -> None:
    root, layers, store = env
    for name in ("whiteout-oci.tar", "whiteout-docker.tar"):
        with open(fx.FIXTURES / name, "rb") as f:
            store.load_archive(f)
    assert len(store.list()) == 1  # same config bytes: the same image id
    assert len(layers.layer_ids()) == 2
    # an image sharing the base layer stores only its own new layer
    base = fx.layer(fx.file("a"))
    store.load_archive(io.BytesIO(fx.docker_save([base], tags=["one:1"])))
    store.load_archive(io.BytesIO(fx.docker_save([base, fx.layer(fx.file("b"))], tags=["two:1"])))
    assert len(layers.layer_ids()) == 4
    assert len(os.listdir(root / "image/overlay2/layerdb/sha256")) == 4
    store.remove("one:1")
    assert len(layers.layer_ids()) == 4  # base still used by two:1
    _untagged, deleted = store.remove("two:1")
    assert len(deleted) == 3  # image + its two layers
    assert len(layers.layer_ids()) == 2
    assert len(os.listdir(root / "overlay2/l")) == 2


def test_busybox_is_built_locally_and_runs(env: tuple[Path, LayerStore, ImageStore]) -> None:
    _root, layers, store = env
    with pytest.raises(errdefs.NotFound, match="no such image: busybox"):
        store.get("busybox")
    image = store.ensure("busybox")
    assert image.repo_tags == ["busybox:latest"]
    assert image.config.cmd == ["sh"] and any(e.startswith("PATH=") and "/bin" in e for e in image.config.env)
    assert store.ensure("busybox:latest").id == image.id
    merged = _run_in(layers, image.top_layer, "bb")
    try:
        assert os.readlink(merged / "bin" / "sh") == "busybox"
        assert (merged / "bin" / "busybox").stat().st_mode & 0o111
        out = os.popen(f"chroot {merged} /bin/sh -c 'echo ok; ls /bin | wc -l'").read().split()
        assert out[0] == "ok" and int(out[1]) > 100
    finally:
        layers.remove_container_layers("bb")
    # deterministic: a second store builds the same image id
    _l2, store2 = _stores(_root.parent / "root2")
    assert store2.ensure("busybox").id == image.id
    with pytest.raises(errdefs.NotFound):
        store.ensure("alpine")


def test_import_with_changes_gzip_and_tag(env: tuple[Path, LayerStore, ImageStore]) -> None:
    _root, layers, store = env
    tar = fx.layer(fx.directory("bin"), fx.file("bin/hello", b"#!/bin/sh\n", 0o755))
    seen: list[int] = []
    image = store.import_archive(
        io.BytesIO(gzip.compress(tar)),
        "example.com:5000/team/app:v2",
        ["ENV PATH=/bin", 'CMD ["hello"]', "EXPOSE 80 53/udp", "LABEL a=b", "WORKDIR /srv", "USER 1000",
         "STOPSIGNAL SIGINT", "VOLUME /data", "ENTRYPOINT /bin/sh"],
        progress=seen.append,
    )  # fmt: skip
    assert seen and seen[-1] > 0
    assert image.repo_tags == ["example.com:5000/team/app:v2"]
    c = image.config
    assert (c.env, c.cmd, c.working_dir, c.user, c.stop_signal) == (["PATH=/bin"], ["hello"], "/srv", "1000", "SIGINT")
    assert c.exposed_ports == ["80/tcp", "53/udp"] and c.labels == {"a": "b"} and c.volumes == ["/data"]
    assert c.entrypoint == ["/bin/sh", "-c", "/bin/sh"]
    doc = image_view.inspect(store, image.id[:19])
    assert doc["Config"]["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert doc["RootFS"]["Layers"] == [fx.sha(tar)]
    assert doc["GraphDriver"]["Data"]["UpperDir"] == str(layers.diff_dir(image.top_layer))
    assert json.dumps(doc)
    assert (layers.diff_dir(image.top_layer) / "bin" / "hello").stat().st_mode & 0o777 == 0o755
    # plain tar, no name
    image2 = store.import_archive(io.BytesIO(tar))
    assert image2.repo_tags == [] and image2.top_layer == image.top_layer  # same diff: stored once


def test_get_by_id_prefix_names_and_remove_rules(env: tuple[Path, LayerStore, ImageStore]) -> None:
    root, layers, store = env
    store.load_archive(io.BytesIO(fx.docker_save([fx.layer(fx.file("x"))], tags=["docker.io/library/aa:1", "bb"])))
    image = store.get("aa:1")
    assert image.repo_tags == ["aa:1", "bb:latest"]
    assert store.get("bb").id == store.get(image.id).id == store.get(image.id[7:15]).id == image.id
    assert store.get("docker.io/library/bb:latest").id == image.id
    with pytest.raises(errdefs.FailedPrecondition, match="multiple repositories"):
        store.remove(image.id)
    assert store.remove("bb") == (["bb:latest"], [])
    with pytest.raises(errdefs.FailedPrecondition, match="container"):
        store.remove("aa:1", in_use=lambda image_id: image_id == image.id)
    assert store.remove("aa:1", force=True, in_use=lambda _i: True) == (["aa:1"], [])
    assert store.get(image.id).repo_tags == []  # kept, dangling, for the container
    _untagged, deleted = store.remove(image.id)
    assert deleted[0] == image.id
    assert layers.layer_ids() == set() and os.listdir(root / "overlay2/l") == []
    with pytest.raises(errdefs.NotFound, match="no such image: aa:1"):
        store.get("aa:1")
    assert json.loads((root / "image/overlay2/repositories.json").read_text()) == {"Repositories": {}}


def test_state_survives_restart(env: tuple[Path, LayerStore, ImageStore]) -> None:
    root, _layers, store = env
    with open(fx.FIXTURES / "whiteout-oci.tar", "rb") as f:
        store.load_archive(f)
    image = store.get("whiteout:v1")
    _l2, again = _stores(root)
    assert again.get("whiteout:v1") == image
    assert [i.id for i in again.list()] == [image.id]


def test_concurrent_loads_of_same_and_different_images(env: tuple[Path, LayerStore, ImageStore]) -> None:
    root, layers, store = env
    shared = fx.layer(fx.file("shared", b"s" * 10000))
    archives = [fx.docker_save([shared, fx.layer(fx.file(f"own{i}"))], tags=[f"img{i}:1"]) for i in range(6)]
    errors: list[BaseException] = []

    def load(data: bytes) -> None:
        try:
            store.load_archive(io.BytesIO(data))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=load, args=(a,)) for a in archives + archives[:2]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.list()) == 6
    assert len(layers.layer_ids()) == 7  # one shared base + six own layers
    assert not [n for n in os.listdir(root / "overlay2") if n.startswith(".")]


def test_crash_leftovers_are_collected_on_start(env: tuple[Path, LayerStore, ImageStore]) -> None:
    root, layers, store = env
    store.load_archive(io.BytesIO(fx.docker_save([fx.layer(fx.file("x"))], tags=["keep:1"])))
    # a layer committed but never referenced by an image (crash between layer and config)
    orphan = layers.commit(layers.new_staging(), None)
    staging = layers.new_staging()
    layers.create_container_layers("ctr", store.get("keep:1").top_layer)
    (root / "image/overlay2/imagedb/content/sha256" / ("0" * 64)).write_bytes(b"torn")
    layers2, store2 = _stores(root)
    assert orphan not in layers2.layer_ids() and not staging.exists()
    assert layers2.container_layer_ids() == {"ctr"}  # container layers are not the store's to collect
    assert [i.repo_tags for i in store2.list()] == [["keep:1"]]
    layers2.remove_container_layers("ctr")


def test_layers_under_a_container_survive_image_removal(env: tuple[Path, LayerStore, ImageStore]) -> None:
    root, layers, store = env
    store.load_archive(io.BytesIO(fx.docker_save([fx.layer(fx.file("base")), fx.layer(fx.file("top"))], tags=["pin:1"])))
    image = store.get("pin:1")
    assert store.tag("pin:1", "other/name:2") == "other/name:2"
    assert store.get("other/name:2").id == image.id
    merged = _run_in(layers, image.top_layer, "pinned")
    try:
        # the caller forgot to say the image is in use: the container's layers are still kept
        store.remove(image.id, force=True)
        with pytest.raises(errdefs.NotFound):
            store.get(image.id)
        assert (merged / "base").exists() and (merged / "top").exists()
        assert image.top_layer in layers.layer_ids()
    finally:
        layers.remove_container_layers("pinned")
    store.gc()
    assert layers.layer_ids() == set() and os.listdir(root / "image/overlay2/layerdb/sha256") == []
    with pytest.raises(errdefs.InvalidArgument):
        store.tag("nope", "Bad Name")


def test_load_from_a_plain_file_and_from_a_pipe(env: tuple[Path, LayerStore, ImageStore], short_tmp: Path) -> None:
    _root, _layers, store = env
    data = fx.docker_save([fx.layer(fx.file("p"))], tags=["piped:1"])
    path = short_tmp / "a.tar"
    path.write_bytes(gzip.compress(data))
    r, w = os.pipe()

    def feed() -> None:
        with open(w, "wb") as out:
            out.write(path.read_bytes())

    t = threading.Thread(target=feed)
    t.start()
    with open(r, "rb") as pipe:
        assert store.load_archive(pipe) == ["Loaded image: piped:1"]
    t.join()
    path.write_bytes(fx.docker_save([fx.layer(fx.file("p"))], tags=["file:1"]))
    with open(path, "rb") as f:
        assert store.load_archive(f) == ["Loaded image: file:1"]
    assert store.get("file:1").id == store.get("piped:1").id


def test_image_whose_layer_dir_vanished_is_dropped_on_start(env: tuple[Path, LayerStore, ImageStore]) -> None:
    root, layers, store = env
    store.load_archive(io.BytesIO(fx.docker_save([fx.layer(fx.file("a")), fx.layer(fx.file("b"))], tags=["broken:1"])))
    store.load_archive(io.BytesIO(fx.docker_save([fx.layer(fx.file("c"))], tags=["fine:1"])))
    top = store.get("broken:1").top_layer
    base = layers.parents(top or "")[0]
    layers.remove_layer(base)
    layers2, store2 = _stores(root)
    assert [i.repo_tags for i in store2.list()] == [["fine:1"]]
    assert top not in layers2.layer_ids()
    assert len(os.listdir(root / "image/overlay2/layerdb/sha256")) == 1


def test_oci_multi_platform_index_loads_the_host_platform(env: tuple[Path, LayerStore, ImageStore]) -> None:
    _root, _layers, store = env
    import tarfile

    from daemon.images.archive import HOST_ARCH

    other_arch = "s390x" if HOST_ARCH != "s390x" else "arm64"
    host = fx.oci_archive([fx.layer(fx.file("host"))], ref="multi:1")
    other = fx.oci_archive([fx.layer(fx.file("other"))], ref="multi:1")
    files: dict[str, bytes] = {}
    manifests = []
    for arch, data in ((other_arch, other), (HOST_ARCH, host)):
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            for m in tf.getmembers():
                f = tf.extractfile(m)
                files[m.name] = f.read() if f else b""
            desc = json.loads(files["index.json"])["manifests"][0]
        desc.pop("annotations")
        desc["platform"] = {"os": "linux", "architecture": arch}
        manifests.append(desc)
    inner = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}).encode()
    files["blobs/sha256/" + fx.sha(inner)[7:]] = inner
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": fx.sha(inner), "size": len(inner),
        "annotations": {"io.containerd.image.name": "docker.io/library/multi:1"}}]}).encode()  # fmt: skip
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as out:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            out.addfile(ti, io.BytesIO(data))
    assert store.load_archive(io.BytesIO(buf.getvalue())) == ["Loaded image: multi:1"]
    image = store.get("multi:1")
    assert len(store.list()) == 1
    assert (store.layers.diff_dir(image.top_layer or "") / "host").exists()
