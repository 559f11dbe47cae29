"""Registries with authentication (htpasswd Basic; Bearer tokens from a token server), push, save.

Real docker-registry 2.8 on loopback; skopeo checks what ctrd pushed and saved.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctrd import errdefs
from ctrd.dockerconfig import Credentials
from daemon.distribution.client import Options
from daemon.distribution.progress import Event
from daemon.distribution.service import Distribution
from daemon.images.archive import HOST_ARCH
from daemon.images.store import ImageStore
from daemon.layers.overlay2 import LayerStore
from tests import registry_env as renv

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("docker-registry", "skopeo", "htpasswd")),
    reason="needs docker-registry, skopeo and htpasswd (scripts/install-deps.sh)",
)
USER, PASSWORD = "ada", "s3cret"


def _dist(root: Path, config_path: Path | None = None) -> Distribution:
    store = ImageStore(root, LayerStore(root / "overlay2"))
    return Distribution(store, root, Options(attempts=2, backoff=0.01), config_path=config_path or root / "none.json")


def _image(base: Path, name: str) -> Path:
    spec = renv.ImageSpec(HOST_ARCH, [renv.text_layer(("one", b"1" * 3000)), renv.text_layer((name, name.encode()))])
    return renv.make_layout(base / name, [spec], "t")


@pytest.fixture
def basic(short_tmp: Path) -> Iterator[renv.RegistryProc]:
    reg = renv.RegistryProc.start(short_tmp / "reg", htpasswd=(USER, PASSWORD))
    try:
        renv.skopeo_copy(f"oci:{_image(short_tmp, 'app')}:t", f"docker://{reg.host}/app:v1",
                         f"--dest-creds={USER}:{PASSWORD}")
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def token(short_tmp: Path) -> Iterator[tuple[renv.RegistryProc, renv.TokenServer]]:
    ts = renv.TokenServer.start({USER: PASSWORD})
    reg = renv.RegistryProc.start(short_tmp / "reg", token=ts)
    try:
        renv.skopeo_copy(f"oci:{_image(short_tmp, 'app')}:t", f"docker://{reg.host}/app:v1")
        yield reg, ts
    finally:
        reg.stop()
        ts.stop()


def test_basic_auth_login_and_pull(basic: renv.RegistryProc, short_tmp: Path) -> None:
    dist = _dist(short_tmp / "root")
    with pytest.raises(errdefs.FailedPrecondition, match="unauthorized") as exc:
        asyncio.run(dist.login(basic.host, Credentials(USER, "wrong")))
    assert exc.value.reason == "unauthorized"
    assert asyncio.run(dist.login(basic.host, Credentials(USER, PASSWORD))) == "Login Succeeded"
    with pytest.raises(errdefs.FailedPrecondition, match="unauthorized"):
        asyncio.run(dist.pull(f"{basic.host}/app:v1", "", Credentials(), lambda e: None))
    image = asyncio.run(dist.pull(f"{basic.host}/app:v1", "", Credentials(USER, PASSWORD), lambda e: None))
    raw = renv.skopeo_inspect(f"docker://{basic.host}/app:v1", "--config", "--raw", f"--creds={USER}:{PASSWORD}")
    assert image.image_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_credentials_come_from_docker_config_json(basic: renv.RegistryProc, short_tmp: Path) -> None:
    from ctrd import dockerconfig

    cfg = short_tmp / "docker" / "config.json"
    dockerconfig.store(basic.host, Credentials(USER, PASSWORD), cfg)
    dist = _dist(short_tmp / "root", config_path=cfg)
    assert asyncio.run(dist.pull(f"{basic.host}/app:v1", "", Credentials(), lambda e: None)).image_id


def test_bearer_token_flow_anonymous_and_with_credentials(token: tuple[renv.RegistryProc, renv.TokenServer],
                                                          short_tmp: Path) -> None:
    reg, ts = token
    dist = _dist(short_tmp / "root")
    asyncio.run(dist.pull(f"{reg.host}/app:v1", "", Credentials(), lambda e: None))
    anon = [r for r in ts.requests if not r["user"]]
    assert anon and all(r["service"] == ["ctrd-test-registry"] for r in anon)
    assert ["repository:app:pull"] in [r["scope"] for r in anon]
    with pytest.raises(errdefs.FailedPrecondition, match="unauthorized"):
        asyncio.run(dist.login(reg.host, Credentials(USER, "wrong")))
    assert asyncio.run(dist.login(reg.host, Credentials(USER, PASSWORD))) == "Login Succeeded"
    assert ts.requests[-1]["user"] == USER


def test_push_then_pull_back_and_skopeo_agrees(token: tuple[renv.RegistryProc, renv.TokenServer], short_tmp: Path) -> None:
    reg, ts = token
    dist = _dist(short_tmp / "root")
    pulled = asyncio.run(dist.pull(f"{reg.host}/app:v1", "", Credentials(USER, PASSWORD), lambda e: None))
    dist.images.tag(pulled.image_id, f"{reg.host}/copy:v2")
    events: list[Event] = []
    digest, image_id = asyncio.run(dist.push(f"{reg.host}/copy:v2", Credentials(USER, PASSWORD), events.append))
    assert image_id == pulled.image_id
    statuses = {e.status for e in events}
    assert "Mounted from app" in statuses  # same registry, other repository: no bytes sent
    assert ["repository:copy:pull,push"] in [r["scope"] for r in ts.requests]
    remote = json.loads(renv.skopeo_inspect(f"docker://{reg.host}/copy:v2"))
    assert remote["Digest"] == digest
    raw = renv.skopeo_inspect(f"docker://{reg.host}/copy:v2", "--config", "--raw")
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == image_id
    # pushing again finds every blob there
    again: list[Event] = []
    asyncio.run(dist.push(f"{reg.host}/copy:v2", Credentials(), again.append))
    assert [e.status for e in again if e.status.startswith("Layer")] == ["Layer already exists"] * 2
    # a fresh store pulls it back to the same image
    fresh = _dist(short_tmp / "root2")
    assert asyncio.run(fresh.pull(f"{reg.host}/copy:v2", "", Credentials(), lambda e: None)).image_id == image_id


def test_push_uploads_to_another_registry(token: tuple[renv.RegistryProc, renv.TokenServer], short_tmp: Path) -> None:
    reg, _ts = token
    other = renv.RegistryProc.start(short_tmp / "reg2")
    try:
        dist = _dist(short_tmp / "root")
        pulled = asyncio.run(dist.pull(f"{reg.host}/app:v1", "", Credentials(), lambda e: None))
        dist.images.tag(pulled.image_id, f"{other.host}/moved:1")
        events: list[Event] = []
        digest, _ = asyncio.run(dist.push(f"{other.host}/moved:1", Credentials(), events.append))
        assert [e.status for e in events].count("Pushed") == 2  # two layers (the config is not shown)
        assert json.loads(renv.skopeo_inspect(f"docker://{other.host}/moved:1"))["Digest"] == digest
    finally:
        other.stop()


def test_push_of_an_unknown_image_is_not_found(token: tuple[renv.RegistryProc, renv.TokenServer], short_tmp: Path) -> None:
    reg, _ = token
    dist = _dist(short_tmp / "root")
    with pytest.raises(errdefs.NotFound, match="no such image"):
        asyncio.run(dist.push(f"{reg.host}/ghost:1", Credentials(), lambda e: None))


def test_save_round_trips_through_load_and_skopeo_reads_it(token: tuple[renv.RegistryProc, renv.TokenServer],
                                                           short_tmp: Path) -> None:
    reg, _ = token
    dist = _dist(short_tmp / "root")
    pulled = asyncio.run(dist.pull(f"{reg.host}/app:v1", "", Credentials(), lambda e: None))
    archive = short_tmp / "saved.tar"
    with open(archive, "wb") as f:
        dist.save([f"{reg.host}/app:v1"], f)
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == [f"{reg.host}/app:v1"]
    # a third party reads it as docker's save format and sees our image id
    out = subprocess.run(["skopeo", "--insecure-policy", "inspect", "--config", "--raw", f"docker-archive:{archive}"],
                         check=True, capture_output=True).stdout
    assert "sha256:" + hashlib.sha256(out).hexdigest() == pulled.image_id
    fresh = ImageStore(short_tmp / "root2", LayerStore(short_tmp / "root2" / "overlay2"))
    with open(archive, "rb") as f:
        assert fresh.load_archive(f) == [f"Loaded image: {reg.host}/app:v1"]
    assert fresh.get(f"{reg.host}/app:v1").id == pulled.image_id
    with tempfile.TemporaryFile() as f, pytest.raises(errdefs.NotFound):
        dist.save(["ghost:1"], f)


def test_imported_and_loaded_images_can_be_pushed_and_saved(short_tmp: Path) -> None:
    import gzip
    import io

    from tests.fixtures import images as fx

    reg = renv.RegistryProc.start(short_tmp / "reg")
    try:
        dist = _dist(short_tmp / "root")
        imported = dist.images.import_archive(io.BytesIO(gzip.compress(renv.text_layer(("imp", b"imported\n")))),
                                              f"{reg.host}/imp:1")
        layer = renv.text_layer(("ld", b"loaded\n"))
        archive = fx.docker_save([layer], tags=[f"{reg.host}/ld:1"])  # uncompressed layer.tar, as docker save
        assert dist.images.load_archive(io.BytesIO(archive)) == [f"Loaded image: {reg.host}/ld:1"]
        for name, image_id in (("imp:1", imported.id), ("ld:1", dist.images.get(f"{reg.host}/ld:1").id)):
            events: list[Event] = []
            digest, pushed_id = asyncio.run(dist.push(f"{reg.host}/{name}", Credentials(), events.append))
            assert pushed_id == image_id and [e.status for e in events].count("Pushed") == 1
            assert json.loads(renv.skopeo_inspect(f"docker://{reg.host}/{name}"))["Digest"] == digest
            fresh = _dist(short_tmp / f"fresh-{name[:3]}")
            assert asyncio.run(fresh.pull(f"{reg.host}/{name}", "", Credentials(), lambda e: None)).image_id == image_id
        raw = renv.skopeo_inspect(f"docker://{reg.host}/ld:1", "--raw")
        assert json.loads(raw)["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
        out = io.BytesIO()
        dist.save([f"{reg.host}/imp:1"], out)
        other = ImageStore(short_tmp / "root3", LayerStore(short_tmp / "root3" / "overlay2"))
        assert other.load_archive(io.BytesIO(out.getvalue())) == [f"Loaded image: {reg.host}/imp:1"]
        assert other.get(f"{reg.host}/imp:1").id == imported.id
        assert not [p for p in (short_tmp / "root" / "content" / "ingest").iterdir()]
    finally:
        reg.stop()


def test_blobs_go_when_no_image_needs_them(short_tmp: Path) -> None:
    import io

    reg = renv.RegistryProc.start(short_tmp / "reg")
    try:
        base = renv.text_layer(("base", b"shared"))
        for name, top in (("a", b"a"), ("b", b"b")):
            layout = renv.make_layout(short_tmp / name, [renv.ImageSpec(HOST_ARCH, [base, renv.text_layer((name, top))])], "t")
            renv.skopeo_copy(f"oci:{layout}:t", f"docker://{reg.host}/{name}:1")
        dist = _dist(short_tmp / "root")
        for name in ("a", "b"):
            asyncio.run(dist.pull(f"{reg.host}/{name}:1", "", Credentials(), lambda e: None))
        blobs = lambda: sorted(p.name for p in dist.content.blobs.iterdir())  # noqa: E731
        assert len(blobs()) == 5  # two configs, the shared base, two tops
        dist.images.remove(f"{reg.host}/a:1")
        assert len(dist.gc()) == 2 and len(blobs()) == 3  # a's config and top layer
        with io.BytesIO() as out:
            dist.save([f"{reg.host}/b:1"], out)  # b still has all it needs
        dist.images.remove(f"{reg.host}/b:1")
        dist.gc()
        assert blobs() == []
    finally:
        reg.stop()


def test_chunked_upload_resumes_after_a_failed_chunk(short_tmp: Path) -> None:
    import io
    import os

    reg = renv.RegistryProc.start(short_tmp / "reg")
    proxy = renv.FaultProxy.start(reg.host, fail_patch=2)
    try:
        store_root = short_tmp / "root"
        store = ImageStore(store_root, LayerStore(store_root / "overlay2"))
        dist = Distribution(store, store_root, Options(attempts=3, backoff=0.01, upload_chunk=64 << 10),
                            config_path=store_root / "none.json")
        tar = renv.text_layer(("noise", os.urandom(300 << 10)))  # ~300 KiB blob: five 64 KiB chunks
        import gzip

        image = dist.images.import_archive(io.BytesIO(gzip.compress(tar)), f"{proxy.host}/chunky:1")
        events: list[Event] = []
        digest, _ = asyncio.run(dist.push(f"{proxy.host}/chunky:1", Credentials(), events.append))
        assert proxy.patches >= 6  # five chunks and the one answered 502, sent again
        assert json.loads(renv.skopeo_inspect(f"docker://{reg.host}/chunky:1"))["Digest"] == digest
        fresh = _dist(short_tmp / "fresh")
        assert asyncio.run(fresh.pull(f"{reg.host}/chunky:1", "", Credentials(), lambda e: None)).image_id == image.id
    finally:
        proxy.stop()
        reg.stop()
