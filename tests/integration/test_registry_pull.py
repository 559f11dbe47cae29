"""Pull from a real registry (Debian's docker-registry 2.8 on loopback), images put there by skopeo.

The distribution code runs in-process over a real ImageStore in a temp root; faults come from a
proxy between it and the registry (cut connections, flipped bytes, held downloads).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ctrd import errdefs
from ctrd.dockerconfig import Credentials
from daemon.distribution.client import Options
from daemon.distribution.progress import Event
from daemon.distribution.service import Distribution
from daemon.images import view
from daemon.images.archive import HOST_ARCH
from daemon.images.store import ImageStore
from daemon.layers.overlay2 import LayerStore
from tests import registry_env as renv

pytestmark = pytest.mark.skipif(not (shutil.which("docker-registry") and shutil.which("skopeo")),
                                reason="needs docker-registry and skopeo (scripts/install-deps.sh)")
OTHER_ARCH = "arm64" if HOST_ARCH != "arm64" else "amd64"
BIG = os.urandom(3 << 20)  # incompressible: the blob stays ~3 MiB, enough to cut in the middle


@dataclass
class World:
    reg: renv.RegistryProc
    base: Path

    def ref(self, name: str) -> str:
        return f"{self.reg.host}/{name}"


def _push(world_base: Path, reg: renv.RegistryProc, name: str, images: list[renv.ImageSpec], *extra: str) -> None:
    layout = renv.make_layout(world_base / "layouts" / name.replace(":", "_"), images, "t")
    renv.skopeo_copy(f"oci:{layout}:t", f"docker://{reg.host}/{name}", *extra)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    base = Path(tempfile.mkdtemp(prefix="ctrdr-", dir="/tmp"))
    reg = renv.RegistryProc.start(base / "registry")
    try:
        base_layer = renv.text_layer(("etc/base", b"base layer\n"))
        _push(base, reg, "app:v1", [renv.ImageSpec(HOST_ARCH, [base_layer, renv.text_layer(("app/hello", b"hello\n"))])])
        _push(base, reg, "multi:v1", [
            renv.ImageSpec(HOST_ARCH, [renv.text_layer(("arch", HOST_ARCH.encode()))]),
            renv.ImageSpec(OTHER_ARCH, [renv.text_layer(("arch", OTHER_ARCH.encode()))], variant="v8" if OTHER_ARCH == "arm64" else ""),
        ], "--all")
        _push(base, reg, "zst:v1", [renv.ImageSpec(HOST_ARCH, [renv.text_layer(("z/file", b"zstd!" * 1000))], compression="zstd")])
        _push(base, reg, "plain:v1", [renv.ImageSpec(HOST_ARCH, [renv.text_layer(("p", b"uncompressed"))], compression="")])
        _push(base, reg, "big:v1", [renv.ImageSpec(HOST_ARCH, [renv.text_layer(("big", BIG)), renv.text_layer(("s", b"s"))])])
        _push(base, reg, "six:v1", [renv.ImageSpec(HOST_ARCH, [renv.text_layer((f"l{i}", bytes([i]) * 5000)) for i in range(6)])])
        _push(base, reg, "other:v1", [renv.ImageSpec(HOST_ARCH, [base_layer, renv.text_layer(("other", b"other\n"))])])
        yield World(reg, base)
    finally:
        reg.stop()
        shutil.rmtree(base, ignore_errors=True)


def _dist(root: Path, **opts: object) -> Distribution:
    store = ImageStore(root, LayerStore(root / "overlay2"))
    return Distribution(store, root, Options(attempts=3, backoff=0.01, **opts))  # type: ignore[arg-type]


def _pull(dist: Distribution, ref: str, platform: str = "", events: list[Event] | None = None) -> str:
    evs: list[Event] = [] if events is None else events
    return asyncio.run(dist.pull(ref, platform, Credentials(), evs.append)).image_id


def _layer_file(dist: Distribution, image_id: str, path: str) -> bytes:
    top = dist.images.get(image_id).top_layer
    assert top is not None
    for cache in [top, *dist.images.layers.parents(top)]:
        p = dist.images.layers.diff_dir(cache) / path
        if p.exists():
            return p.read_bytes()
    raise FileNotFoundError(path)


def _skopeo_config_id(ref: str) -> str:
    raw = renv.skopeo_inspect(f"docker://{ref}", "--config", "--raw")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_pull_by_tag_registers_the_image_skopeo_describes(world: World, short_tmp: Path) -> None:
    dist = _dist(short_tmp)
    events: list[Event] = []
    image_id = _pull(dist, world.ref("app:v1"), events=events)
    assert image_id == _skopeo_config_id(world.ref("app:v1"))  # docker's image id: sha256 of the config
    remote = json.loads(renv.skopeo_inspect(f"docker://{world.ref('app:v1')}"))
    doc = view.inspect(dist.images, world.ref("app:v1"))
    assert doc["Id"] == image_id and doc["RepoTags"] == [world.ref("app:v1")]
    assert dist.repo_digests(image_id) == [f"{world.ref('app')}@{remote['Digest']}"]
    assert _layer_file(dist, image_id, "app/hello") == b"hello\n"
    assert _layer_file(dist, image_id, "etc/base") == b"base layer\n"
    statuses = [e.status for e in events]
    assert statuses.count("Pull complete") == 2 and statuses[-2] == f"Digest: {remote['Digest']}"
    assert not os.listdir(dist.content.ingest)
    # a second pull downloads nothing and says so
    again: list[Event] = []
    assert _pull(dist, world.ref("app:v1"), events=again) == image_id
    assert [e.status for e in again if e.id and e.status != "Pulling from " + world.ref("app")] == ["Already exists"] * 2
    assert again[-1].status == f"Status: Image is up to date for {world.ref('app:v1')}"


def test_pull_by_digest_adds_no_tag(world: World, short_tmp: Path) -> None:
    digest = json.loads(renv.skopeo_inspect(f"docker://{world.ref('app:v1')}"))["Digest"]
    dist = _dist(short_tmp)
    image_id = _pull(dist, f"{world.ref('app')}@{digest}")
    assert dist.images.get(image_id).repo_tags == []
    assert dist.repo_digests(image_id) == [f"{world.ref('app')}@{digest}"]
    with pytest.raises(errdefs.NotFound, match="manifest unknown"):
        _pull(dist, f"{world.ref('app')}@sha256:{'0' * 64}")


def test_index_picks_the_host_platform_or_the_one_asked_for(world: World, short_tmp: Path) -> None:
    dist = _dist(short_tmp)
    host_id = _pull(dist, world.ref("multi:v1"))
    assert dist.images.get(host_id).architecture == HOST_ARCH
    assert _layer_file(dist, host_id, "arch") == HOST_ARCH.encode()
    raw = renv.skopeo_inspect(f"docker://{world.ref('multi:v1')}", "--raw")
    assert json.loads(raw)["mediaType"] == "application/vnd.oci.image.index.v1+json"
    by_index = f"{world.ref('multi')}@sha256:{hashlib.sha256(raw).hexdigest()}"
    assert dist.repo_digests(host_id) == [by_index]  # the digest the tag named: the index's, as docker
    other_id = _pull(dist, world.ref("multi:v1"), platform=f"linux/{OTHER_ARCH}")
    assert other_id != host_id and dist.images.get(other_id).architecture == OTHER_ARCH
    # one reference names one image (docker's reference store): the last pull of it wins
    assert dist.repo_digests(other_id) == [by_index] and dist.repo_digests(host_id) == []
    with pytest.raises(errdefs.NotFound, match="no matching manifest for linux/s390x"):
        _pull(dist, world.ref("multi:v1"), platform="linux/s390x")


def test_zstd_and_uncompressed_layers(world: World, short_tmp: Path) -> None:
    dist = _dist(short_tmp)
    assert _layer_file(dist, _pull(dist, world.ref("zst:v1")), "z/file") == b"zstd!" * 1000
    assert _layer_file(dist, _pull(dist, world.ref("plain:v1")), "p") == b"uncompressed"


def test_unknown_tag_and_repository_are_not_found(world: World, short_tmp: Path) -> None:
    dist = _dist(short_tmp)
    with pytest.raises(errdefs.NotFound, match="manifest unknown"):
        _pull(dist, world.ref("app:nope"))
    with pytest.raises(errdefs.NotFound):
        _pull(dist, world.ref("nothing/here:v1"))
    assert dist.images.list() == []


def test_flipped_byte_is_refused_and_nothing_is_committed(world: World, short_tmp: Path) -> None:
    proxy = renv.FaultProxy.start(world.reg.host, flip=True, cut_min=1 << 20)
    try:
        dist = _dist(short_tmp)
        with pytest.raises(errdefs.Internal, match="digest mismatch") as exc:
            _pull(dist, f"{proxy.host}/big:v1")
        assert exc.value.reason == "digest-mismatch"
    finally:
        proxy.stop()
    assert dist.images.list() == []
    assert not os.listdir(dist.content.ingest)
    big = [p for p in os.listdir(dist.content.blobs) if os.path.getsize(dist.content.blobs / p) > (1 << 20)]
    assert big == []  # the bad blob never reached blobs/
    assert dist.images.layerdb.records == {}  # the image's small layer was not kept either
    assert dist.images.layers.layer_ids() == set()


def test_cut_download_resumes_with_range(world: World, short_tmp: Path) -> None:
    proxy = renv.FaultProxy.start(world.reg.host, cut_after=1 << 20, cut_min=1 << 20)
    try:
        dist = _dist(short_tmp)
        image_id = _pull(dist, f"{proxy.host}/big:v1")
    finally:
        proxy.stop()
    assert _layer_file(dist, image_id, "big") == BIG
    assert proxy.ranges == [f"bytes={1 << 20}-"]  # the retry asked only for the rest


def test_at_most_three_downloads_at_once(world: World, short_tmp: Path) -> None:
    gate = threading.Event()
    config = json.loads(renv.skopeo_inspect(f"docker://{world.ref('six:v1')}", "--raw"))["config"]["digest"]
    proxy = renv.FaultProxy.start(world.reg.host, gate=gate, ungated=frozenset({config}))
    dist = _dist(short_tmp)

    async def main() -> str:
        task = asyncio.ensure_future(dist.pull(f"{proxy.host}/six:v1", "", Credentials(), lambda e: None))
        # three downloads reach the registry and are held there; by then all six layer downloads
        # were asked for (each pull's layers are requested in one pass of the loop)
        assert await asyncio.to_thread(proxy.wait_active, 3), task.exception() if task.done() else "no downloads"
        assert len(dist.fetcher._inflight) == 6 and dist.fetcher.active == 3 and proxy.active == 3
        gate.set()
        return (await task).image_id

    try:
        image_id = asyncio.run(main())
    finally:
        gate.set()
        proxy.stop()
    assert len(dist.images.get(image_id).diff_ids) == 6
    assert proxy.peak == 3 and dist.fetcher.peak == 3


def test_concurrent_pulls_share_layer_downloads(world: World, short_tmp: Path) -> None:
    proxy = renv.FaultProxy.start(world.reg.host)
    dist = _dist(short_tmp)

    async def main() -> list[str]:
        pulls = [dist.pull(f"{proxy.host}/{n}", "", Credentials(), lambda e: None) for n in ("app:v1", "other:v1", "app:v1")]
        return [r.image_id for r in await asyncio.gather(*pulls)]

    try:
        a, b, a2 = asyncio.run(main())
    finally:
        proxy.stop()
    assert a == a2 and a != b
    layer_gets = [p for p in proxy.blob_gets]
    assert len(layer_gets) == len(set(layer_gets))  # every blob fetched once: the shared base too


def test_unreachable_registry_gives_one_clear_error(short_tmp: Path) -> None:
    dist = _dist(short_tmp)
    with pytest.raises(errdefs.Unavailable, match="giving up after 3 attempts"):
        _pull(dist, f"127.0.0.1:{renv.free_port()}/app:v1")


def test_insecure_registry_flag_allows_plain_http_for_a_named_host(world: World, short_tmp: Path) -> None:
    # "localhost" and 127.0.0.0/8 are insecure by default; any other name must be listed, even
    # one that resolves to loopback (here: the machine's own hostname, when it does)
    import socket

    host = socket.gethostname()
    try:
        addrs = {a[4][0] for a in socket.getaddrinfo(host, None, socket.AF_INET)}
    except OSError:
        addrs = set()
    if not addrs or not all(a.startswith("127.") for a in addrs) or host == "localhost":
        pytest.skip("the hostname does not resolve to loopback here")
    name = f"{host}:{world.reg.port}"
    dist = _dist(short_tmp)
    with pytest.raises(errdefs.Unavailable, match="plain HTTP is used only for insecure registries"):
        _pull(dist, f"{name}/app:v1")
    # nothing listening is a connection failure, retried, not a TLS one
    with pytest.raises(errdefs.Unavailable, match="giving up after 3 attempts"):
        _pull(dist, f"{host}:{renv.free_port()}/app:v1")
    dist2 = _dist(short_tmp / "b", insecure_registries=frozenset({name}))
    assert _pull(dist2, f"{name}/app:v1") == _skopeo_config_id(world.ref("app:v1"))


def test_tls_registry_verified_with_a_ca_from_certs_d(world: World, short_tmp: Path) -> None:
    # a name that is not loopback by docker's rule, so TLS is verified (the hostname, when it
    # resolves to loopback here); the CA is the test's own, given through certs.d
    import socket

    host = socket.gethostname()
    try:
        addrs = {a[4][0] for a in socket.getaddrinfo(host, None, socket.AF_INET)}
    except OSError:
        addrs = set()
    if not addrs or not all(a.startswith("127.") for a in addrs) or host == "localhost":
        pytest.skip("the hostname does not resolve to loopback here")
    ca, cert, key = renv.make_tls(short_tmp / "tls", host)
    reg = renv.RegistryProc.start(short_tmp / "treg", tls=(cert, key))
    try:
        name = f"{host}:{reg.port}"
        renv.skopeo_copy(f"docker://{world.ref('app:v1')}", f"docker://{name}/app:v1")
        with pytest.raises(errdefs.Unavailable, match="certificate verify failed"):
            _pull(_dist(short_tmp / "a", certs_dirs=(short_tmp / "nocerts",)), f"{name}/app:v1")
        certs = short_tmp / "certs.d"
        (certs / name).mkdir(parents=True)
        shutil.copy(ca, certs / name / "ca.crt")
        dist = _dist(short_tmp / "b", certs_dirs=(certs,))
        assert _pull(dist, f"{name}/app:v1") == _skopeo_config_id(world.ref("app:v1"))
    finally:
        reg.stop()


def test_hub_images_come_from_a_mirror_first(world: World, short_tmp: Path) -> None:
    # the mirror holds library/app (Docker Hub's layout); nothing goes to the Hub when it has it
    renv.skopeo_copy(f"docker://{world.ref('app:v1')}", f"docker://{world.ref('library/app:v1')}")
    dead = f"127.0.0.1:{renv.free_port()}"  # a first mirror that does not answer is skipped
    dist = _dist(short_tmp, mirrors=(f"http://{dead}", f"http://{world.reg.host}/"))
    image_id = _pull(dist, "app:v1")
    assert image_id == _skopeo_config_id(world.ref("app:v1"))
    assert dist.images.get("docker.io/library/app:v1").repo_tags == ["app:v1"]
    assert dist.repo_digests(image_id)[0].startswith("app@sha256:")


def test_layer_escaping_its_root_is_refused_and_nothing_registered(world: World, short_tmp: Path) -> None:
    from tests.fixtures import images as fx

    evil = fx.layer(fx.file("ok", b"fine"), fx.file("../../escaped", b"pwned"))
    layout = renv.make_layout(short_tmp / "evil", [renv.ImageSpec(HOST_ARCH, [renv.text_layer(("a", b"a")), evil])], "t")
    renv.skopeo_copy(f"oci:{layout}:t", f"docker://{world.ref('evil:1')}")
    dist = _dist(short_tmp / "root")
    with pytest.raises(errdefs.InvalidArgument, match="path escapes the layer"):
        _pull(dist, world.ref("evil:1"))
    assert dist.images.list() == [] and dist.images.layerdb.records == {}
    assert not (short_tmp / "escaped").exists() and not (short_tmp / "root" / "escaped").exists()


class _HostileRegistry:
    """A registry of the test's own that serves a manifest over 4 MiB (distribution would not)."""

    def __init__(self) -> None:
        import http.server

        def manifest(pad: int) -> bytes:
            return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"digest": "sha256:" + "0" * 64, "size": 2}, "layers": [],
                               "annotations": {"pad": "x" * pad}}).encode()

        big, mid = manifest(5 << 20), manifest(2 << 20)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = (mid if "/mid/" in self.path else big) if "/manifests/" in self.path else b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                if "chunked" not in self.path:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_manifest_over_4_mib_is_refused(short_tmp: Path) -> None:
    hostile = _HostileRegistry()
    try:
        dist = _dist(short_tmp)
        with pytest.raises(errdefs.InvalidArgument, match="over the 4194304 byte limit"):
            _pull(dist, f"{hostile.host}/big:1")
        with pytest.raises(errdefs.InvalidArgument, match="over the 4194304 byte limit"):
            _pull(dist, f"{hostile.host}/chunked:1")  # no Content-Length: cut while reading
        # 2 MiB without Content-Length arrives in many pieces: read whole, then its (fake) config
        # blob is what fails
        with pytest.raises(errdefs.Internal, match="digest mismatch"):
            _pull(dist, f"{hostile.host}/chunked/mid:1")
    finally:
        hostile.stop()
