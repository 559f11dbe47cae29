"""Image references, --change instructions, config parsing, digests, busybox ELF check (no root)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from ctrd import errdefs
from daemon.images import busybox, reference
from daemon.images.blobs import HashingReader, chain_ids, check_digest, decompressed, sha256_bytes
from daemon.images.config import ImageConfig, apply_changes, from_docker
from daemon.images.records import MAX_LAYERS, parse_config
from tests.fixtures import images as fx


@pytest.mark.parametrize(
    ("ref", "want"),
    [
        ("busybox", "busybox:latest"),
        ("busybox:1", "busybox:1"),
        ("docker.io/library/busybox:1.36", "busybox:1.36"),
        ("index.docker.io/library/busybox", "busybox:latest"),
        ("docker.io/me/app", "me/app:latest"),
        ("localhost:5000/a/b:v_1.2-x", "localhost:5000/a/b:v_1.2-x"),
        ("Registry.Example.com/x:1", "Registry.Example.com/x:1"),
        ("a__b/c-d.e:T", "a__b/c-d.e:T"),
    ],
)
def test_reference_normalize(ref: str, want: str) -> None:
    assert reference.normalize(ref) == want


@pytest.mark.parametrize(
    "ref", ["", "Busybox", "a b", "a:b:c", "a:", ":x", "a//b", "-a", "a@sha256:" + "0" * 64, "x" * 300, "a:" + "t" * 129, "a/../b"]
)
def test_reference_invalid(ref: str) -> None:
    with pytest.raises(errdefs.InvalidArgument, match="invalid reference format"):
        reference.normalize(ref)


def test_changes_all_instructions() -> None:
    cfg = apply_changes(
        ImageConfig(env=["PATH=/usr/bin", "A=1"]),
        ["ENV PATH=/bin B=\"two words\"", "ENV LEGACY value with spaces", "CMD echo hi", "entrypoint [\"/e\"]",
         "LABEL x=1 y=2", "EXPOSE 8080 53/udp 8080/tcp", "VOLUME [\"/v1\", \"/v2\"]", "VOLUME /v3",
         "WORKDIR /w", "USER nobody", "STOPSIGNAL 9"],
    )  # fmt: skip
    assert cfg.env == ["A=1", "PATH=/bin", "B=two words", "LEGACY=value with spaces"]
    assert cfg.cmd == ["/bin/sh", "-c", "echo hi"] and cfg.entrypoint == ["/e"]
    assert cfg.labels == {"x": "1", "y": "2"}
    assert cfg.exposed_ports == ["8080/tcp", "53/udp"]
    assert cfg.volumes == ["/v1", "/v2", "/v3"]
    assert (cfg.working_dir, cfg.user, cfg.stop_signal) == ("/w", "nobody", "9")


@pytest.mark.parametrize(
    "change", ["RUN rm -rf /", "ENV", "EXPOSE abc", "EXPOSE 0", "EXPOSE 80/icmp", "LABEL novalue", "VOLUME ../x", "ENV A=\"unterminated"]
)
def test_changes_invalid(change: str) -> None:
    with pytest.raises(errdefs.InvalidArgument, match="change"):
        apply_changes(ImageConfig(), [change])


def test_config_roundtrip_and_field_errors() -> None:
    cfg = from_docker({"Env": ["A=1"], "Cmd": ["sh"], "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "Labels": {"k": "v"}})
    assert from_docker(cfg.to_docker()) == cfg
    assert ImageConfig().to_docker()["Cmd"] is None
    for bad, field in (({"Env": "x=1"}, "Env"), ({"Cmd": [1]}, "Cmd"), ({"User": 0}, "User"), ({"Labels": {"a": 1}}, "Labels"),
                       ({"ExposedPorts": ["80"]}, "ExposedPorts"), ({"Volumes": {"rel": {}}}, "volume")):  # fmt: skip
        with pytest.raises(errdefs.InvalidArgument, match=field):
            from_docker(bad)


def test_parse_config_limits() -> None:
    ok = parse_config(fx.config([fx.sha(b"a"), fx.sha(b"b")]))
    assert ok.chain_ids[0] == fx.sha(b"a")
    assert ok.chain_ids[1] == sha256_bytes(f"{fx.sha(b'a')} {fx.sha(b'b')}".encode())
    assert ok.created.startswith("2024-01-02")
    with pytest.raises(errdefs.InvalidArgument, match="maximum of 125"):
        parse_config(fx.config([fx.sha(bytes([i % 256, i // 256])) for i in range(MAX_LAYERS + 1)]))
    for bad in (b"", b"null", b'{"rootfs": {"type": "x"}}', b'{"rootfs": {"type": "layers", "diff_ids": "x"}}'):
        with pytest.raises(errdefs.InvalidArgument):
            parse_config(bad)


def test_digests_and_chain_ids() -> None:
    assert check_digest("sha256:" + "a" * 64, "f")
    for bad in ("sha256:" + "A" * 64, "sha512:" + "a" * 64, "sha256:../x", None, 5):
        with pytest.raises(errdefs.InvalidArgument, match="invalid digest"):
            check_digest(bad, "f")
    assert chain_ids([]) == []
    assert chain_ids(["sha256:" + "1" * 64]) == ["sha256:" + "1" * 64]


def test_hashing_reader_peek_and_gzip() -> None:
    import gzip

    data = b"hello world" * 1000
    for blob in (data, gzip.compress(data)):
        seen: list[int] = []
        raw = HashingReader(io.BytesIO(blob), seen.append)
        out = decompressed(raw)
        got = b""
        while chunk := out.read(7):
            got += chunk
        raw.drain()
        assert got == data
        assert raw.digest() == sha256_bytes(blob) and raw.count == len(blob) and seen[-1] == len(blob)
    import zstandard

    blob = zstandard.ZstdCompressor().compress(data) + zstandard.ZstdCompressor().compress(b"!")  # two frames
    raw = HashingReader(io.BytesIO(blob))
    assert decompressed(raw).read() == data + b"!"
    with pytest.raises(OSError, match="zstd"):
        decompressed(HashingReader(io.BytesIO(b"\x28\xb5\x2f\xfd rest"))).read()


def test_busybox_refuses_dynamic_binaries(tmp_path: Path) -> None:
    dynamic = shutil.which("ls")
    assert dynamic is not None and busybox.is_dynamic(Path(dynamic))
    with pytest.raises(errdefs.FailedPrecondition, match="dynamically linked"):
        busybox.build(Path(dynamic))
    with pytest.raises(errdefs.FailedPrecondition, match="not found"):
        busybox.build(tmp_path / "missing")
    (tmp_path / "text").write_text("#!/bin/sh\n")
    with pytest.raises(errdefs.FailedPrecondition, match="not an ELF"):
        busybox.build(tmp_path / "text")


@pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="busybox-static not installed")
def test_busybox_rootfs_is_static_and_deterministic() -> None:
    assert not busybox.is_dynamic(Path("/bin/busybox"))
    a, cfg, created = busybox.build(Path("/bin/busybox"))
    b, _, _ = busybox.build(Path("/bin/busybox"))
    assert a.getvalue() == b.getvalue()
    assert cfg.cmd == ["sh"] and created.endswith("Z")
