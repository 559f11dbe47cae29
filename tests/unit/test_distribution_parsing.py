"""Unit tests (no network, no root) for the registry protocol's parsing and decisions."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ctrd import dockerconfig, errdefs
from ctrd.dockerconfig import Credentials
from daemon.distribution import auth, manifest, names, platforms
from daemon.distribution.client import Options, Registry
from daemon.distribution.content import _range_start

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


@pytest.mark.parametrize(("text", "domain", "path", "tag", "digest", "familiar"), [
    ("busybox", "docker.io", "library/busybox", "latest", "", "busybox"),
    ("docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36", "", "busybox"),
    ("user/app", "docker.io", "user/app", "latest", "", "user/app"),
    ("localhost:5000/app:v1", "localhost:5000", "app", "v1", "", "localhost:5000/app"),
    ("localhost/app", "localhost", "app", "latest", "", "localhost/app"),
    ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c", "latest", "", "127.0.0.1:5000/a/b/c"),
    (f"quay.io/org/app@{D1}", "quay.io", "org/app", "", D1, "quay.io/org/app"),
    (f"r.example/app:v2@{D1}", "r.example", "app", "v2", D1, "r.example/app"),
])
def test_reference_parsing(text: str, domain: str, path: str, tag: str, digest: str, familiar: str) -> None:
    ref = names.parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest, ref.familiar) == (domain, path, tag, digest, familiar)
    assert ref.object == (digest or tag)


def test_hub_host_and_canonical_names() -> None:
    assert names.parse("busybox").host == "registry-1.docker.io"
    assert names.parse("localhost:5000/x").host == "localhost:5000"
    assert names.parse(f"x@{D1}").canonical == f"x@{D1}"
    assert names.parse("x").local_tag == "x:latest"


@pytest.mark.parametrize("text", ["", "UPPER/case", "app@sha256:short", "app@md5:" + "a" * 32, "a:b:c", "-x"])
def test_bad_references(text: str) -> None:
    with pytest.raises(errdefs.InvalidArgument, match="invalid reference format"):
        names.parse(text)


@pytest.mark.parametrize(("host", "loop"), [
    ("localhost:5000", True), ("127.0.0.1:80", True), ("127.9.9.9", True), ("[::1]:5000", True),
    ("10.0.0.1:5000", False), ("registry.example", False), ("localhost.example:5000", False),
])
def test_loopback_registries_are_insecure_by_default(host: str, loop: bool) -> None:
    assert names.is_loopback(host) is loop
    reg = Registry(session=None, host=host, creds=Credentials(), opts=Options())  # type: ignore[arg-type]
    assert reg.insecure is loop
    listed = Registry(session=None, host=host, creds=Credentials(), opts=Options(insecure_registries=frozenset({host})))  # type: ignore[arg-type]
    assert listed.insecure


def test_challenges() -> None:
    got = auth.parse_challenges('Bearer realm="https://auth.example/token",service="registry.example",'
                                'scope="repository:app:pull,push"')
    assert got == [auth.Challenge("bearer", {"realm": "https://auth.example/token", "service": "registry.example",
                                             "scope": "repository:app:pull,push"})]
    assert auth.parse_challenges('Basic realm="Registry Realm"') == [auth.Challenge("basic", {"realm": "Registry Realm"})]
    two = auth.parse_challenges('Basic realm="a", Bearer realm="https://t/x",service=s')
    assert [c.scheme for c in two] == ["basic", "bearer"] and two[1].params["service"] == "s"
    assert auth.parse_challenges('Bearer realm="with \\"quote\\""')[0].params["realm"] == 'with "quote"'
    assert auth.parse_challenges("") == []


def test_token_answers_and_basic_header() -> None:
    assert auth.token_from({"token": "t1", "access_token": "t2"}) == "t1"
    assert auth.token_from({"access_token": "t2"}) == "t2"
    assert auth.token_from({"token": ""}) == "" and auth.token_from([]) == ""
    assert auth.basic_header(Credentials("u", "p:w")) == "Basic " + base64.b64encode(b"u:p:w").decode()


def _index(*plats: dict[str, str]) -> list[dict[str, object]]:
    return [{"mediaType": manifest.OCI_MANIFEST, "digest": D1, "size": 1, "platform": p} for p in plats]


def test_platform_selection() -> None:
    idx = _index({"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64", "variant": "v8"},
                 {"os": "linux", "architecture": "arm", "variant": "v7"}, {"os": "windows", "architecture": "amd64"})
    assert platforms.select(idx, platforms.parse("linux/amd64"), "x")["platform"]["architecture"] == "amd64"  # type: ignore[index]
    assert platforms.select(idx, platforms.parse("linux/arm64"), "x")["platform"]["variant"] == "v8"  # type: ignore[index]
    assert platforms.select(idx, platforms.parse("linux/aarch64/v8"), "x")["platform"]["architecture"] == "arm64"  # type: ignore[index]
    assert platforms.select(idx, platforms.parse("linux/arm/v7"), "x")["platform"]["variant"] == "v7"  # type: ignore[index]
    with pytest.raises(errdefs.NotFound, match=r"no matching manifest for linux/arm/v6 .*has: linux/amd64"):
        platforms.select(idx, platforms.parse("linux/arm/v6"), "x")
    with pytest.raises(errdefs.InvalidArgument, match="invalid platform"):
        platforms.parse("linux")
    assert platforms.parse("") == platforms.host()


def _manifest(layers: list[dict[str, object]], config_media: str = manifest.OCI_CONFIG) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": manifest.OCI_MANIFEST,
                       "config": {"mediaType": config_media, "digest": D1, "size": 10}, "layers": layers}).encode()


def test_manifest_parsing_and_refusals() -> None:
    good = _manifest([{"mediaType": manifest.OCI_LAYER + "+zstd", "digest": D2, "size": 5}])
    media, doc = manifest.load(good, "", "x")
    m = manifest.image_manifest(media, doc, "x")
    assert m.config.digest == D1 and m.layers == [manifest.Descriptor(manifest.OCI_LAYER + "+zstd", D2, 5)]
    foreign = _manifest([{"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": D2,
                          "size": 5, "urls": ["https://example/layer"]}])
    with pytest.raises(errdefs.InvalidArgument, match="foreign"):
        manifest.image_manifest(*manifest.load(foreign, "", "x"), "x")
    helm = _manifest([], config_media="application/vnd.cncf.helm.config.v1+json")
    with pytest.raises(errdefs.InvalidArgument, match="not a container image"):
        manifest.image_manifest(*manifest.load(helm, "", "x"), "x")
    with pytest.raises(errdefs.InvalidArgument, match="schema 1"):
        manifest.load(b'{"schemaVersion": 1, "fsLayers": []}', "", "x")
    with pytest.raises(errdefs.InvalidArgument, match="ambiguous"):
        manifest.load(json.dumps({"manifests": [], "layers": []}).encode(), "", "x")
    with pytest.raises(errdefs.InvalidArgument, match="invalid digest"):
        manifest.image_manifest(*manifest.load(_manifest([{"mediaType": manifest.OCI_LAYER, "digest": "sha256:../x",
                                                             "size": 1}]), "", "x"), "x")
    # no mediaType in the body: the fields tell an index from a manifest
    assert manifest.load(b'{"schemaVersion":2,"manifests":[]}', "", "x")[0] == manifest.OCI_INDEX


def test_range_header_parsing() -> None:
    assert _range_start("bytes 100-199/200") == 100
    assert _range_start("bytes */200") == -1 and _range_start("") == -1


def test_docker_config_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credsStore": "desktop", "auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
        "https://old.example/v2/": {"auth": base64.b64encode(b"o:p").decode()},
    }}))
    assert dockerconfig.lookup("docker.io", path) == Credentials("hub", "pw")
    assert dockerconfig.lookup("old.example", path) == Credentials("o", "p")
    assert not dockerconfig.lookup("other:5000", path)
    dockerconfig.store("localhost:5000", Credentials("u", "p"), path)
    doc = json.loads(path.read_text())
    assert doc["credsStore"] == "desktop"  # other settings are kept
    assert base64.b64decode(doc["auths"]["localhost:5000"]["auth"]) == b"u:p"
    assert (path.stat().st_mode & 0o777) == 0o600
    assert dockerconfig.remove("localhost:5000", path) and not dockerconfig.remove("localhost:5000", path)
    assert not dockerconfig.lookup("x", tmp_path / "missing.json")
    path.write_text(json.dumps({"auths": {"bad": {"auth": "%%%"}}}))
    with pytest.raises(errdefs.InvalidArgument, match="not base64"):
        dockerconfig.lookup("bad", path)


def test_retrying_backs_off_then_gives_one_error() -> None:
    import asyncio

    import aiohttp

    from daemon.distribution.client import RetryableStatus, retrying

    calls: list[int] = []

    async def flaky(n: int) -> str:
        calls.append(n)
        if n < 2:
            raise RetryableStatus(503, "blob x") if n == 0 else aiohttp.ClientPayloadError("cut")
        return "ok"

    assert asyncio.run(retrying("blob x", Options(attempts=3, backoff=0.001), flaky)) == "ok" and calls == [0, 1, 2]

    async def down(n: int) -> str:
        raise ConnectionResetError("reset by peer")

    with pytest.raises(errdefs.Unavailable, match="blob y: giving up after 2 attempts: reset by peer"):
        asyncio.run(retrying("blob y", Options(attempts=2, backoff=0.001), down))

    async def fatal(n: int) -> str:
        raise errdefs.NotFound("blob z: blob unknown")

    with pytest.raises(errdefs.NotFound):  # not retried: the answer will not change
        asyncio.run(retrying("blob z", Options(attempts=5, backoff=10), fatal))


def test_progress_display_plain_lines() -> None:
    import io

    from ctrctl.cmd_registry import Display
    from ctrd.v1 import image_pb2

    out = io.StringIO()
    d = Display(out, quiet=False)
    for ident, status, cur in [("abc", "Waiting", 0), ("abc", "Downloading", 1), ("abc", "Downloading", 2),
                               ("abc", "Download complete", 0), ("", "Digest: sha256:x", 0)]:
        d.show(image_pb2.Progress(id=ident, status=status, current=cur, total=2))
    assert out.getvalue() == "abc: Waiting\nabc: Downloading\nabc: Download complete\nDigest: sha256:x\n"


def test_daemon_registry_settings(tmp_path: Path) -> None:
    from daemon import config
    from daemon.main import load

    cfg = load(["--insecure-registry", "reg.lan:5000", "--insecure-registry", "10.0.0.9", "--max-concurrent-downloads", "5",
                "--registry-mirror", "https://mirror.lan"])
    assert cfg.registry_mirrors == ("https://mirror.lan",)
    assert cfg.insecure_registries == ("reg.lan:5000", "10.0.0.9") and cfg.max_concurrent_downloads == 5
    toml = tmp_path / "ctrd.toml"
    toml.write_text('insecure-registries = ["a.lan"]\n')
    assert load(["--config", str(toml)]).insecure_registries == ("a.lan",)
    with pytest.raises(errdefs.InvalidArgument, match="max_concurrent_downloads"):
        config.build({"max_concurrent_downloads": 0})


def test_content_store_start_drops_partial_downloads(tmp_path: Path) -> None:
    from daemon.distribution.content import ContentStore

    store = ContentStore(tmp_path / "content")
    (store.ingest / ("c" * 64)).write_bytes(b"half a blob from a daemon killed mid-pull")
    store.write(b"done", "sha256:" + "d" * 64)  # (digest not checked by write: the caller computed it)
    again = ContentStore(tmp_path / "content")
    assert list(again.ingest.iterdir()) == []
    assert again.has("sha256:" + "d" * 64) and not again.has("sha256:" + "d" * 64, size=5)
