"""ImageService over a real grpc.aio unix socket: streamed import/load, list, inspect, remove."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from ctrd import errdefs
from ctrd.v1 import image_pb2, image_pb2_grpc
from daemon.images.store import ImageStore
from daemon.layers.overlay2 import LayerStore
from daemon.services.images import ImageServicer, _unix
from tests.fixtures import images as fx

LAYER = fx.layer(fx.directory("bin"), fx.file("bin/tool", b"#!/bin/sh\necho tool\n", 0o755))


def _chunks(data: bytes, size: int = 1000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def _serve(root: Path) -> tuple[grpc.aio.Server, str, ImageStore]:
    store = ImageStore(root, LayerStore(root / "overlay2"))
    server = grpc.aio.server()
    image_pb2_grpc.add_ImageServiceServicer_to_server(ImageServicer(store), server)
    sock = f"unix:{root}/img.sock"
    server.add_insecure_port(sock)
    await server.start()
    return server, sock, store


def test_import_load_list_inspect_remove_over_grpc(short_tmp: Path) -> None:
    async def main() -> None:
        server, sock, store = await _serve(short_tmp)
        try:
            async with grpc.aio.insecure_channel(sock) as ch:
                stub = image_pb2_grpc.ImageServiceStub(ch)

                async def imports() -> AsyncIterator[image_pb2.ImportRequest]:
                    yield image_pb2.ImportRequest(header=image_pb2.ImportHeader(reference="tool:1", changes=["CMD [\"/bin/tool\"]"]))
                    for c in _chunks(gzip.compress(LAYER)):
                        yield image_pb2.ImportRequest(chunk=c)

                resp = await stub.Import(imports())
                assert resp.id.startswith("sha256:")

                archive = fx.docker_save([LAYER, fx.layer(fx.file("extra"))], tags=["two:layers"])
                loaded = await stub.Load(image_pb2.LoadRequest(chunk=c) for c in _chunks(archive, 4096))
                assert list(loaded.loaded) == ["Loaded image: two:layers"]

                listing = await stub.List(image_pb2.ImageListRequest())
                by_tag = {t: im for im in listing.images for t in im.repo_tags}
                assert set(by_tag) == {"tool:1", "two:layers"}
                assert by_tag["two:layers"].created == _unix("2024-01-02T03:04:05.123456789Z") > 0
                assert by_tag["tool:1"].size > 0

                doc = json.loads((await stub.Inspect(image_pb2.ImageInspectRequest(reference="tool:1"))).json)
                assert doc["Id"] == resp.id and doc["Config"]["Cmd"] == ["/bin/tool"]

                rm = await stub.Remove(image_pb2.ImageRemoveRequest(reference="two:layers"))
                assert list(rm.untagged) == ["two:layers"] and len(rm.deleted) == 2  # image + its own layer
                assert os.listdir(store.tmp_dir) == []  # spool files are gone
        finally:
            await server.stop(None)

    asyncio.run(main())


def test_servicer_raises_taxonomy_errors(short_tmp: Path) -> None:
    store = ImageStore(short_tmp, LayerStore(short_tmp / "overlay2"))
    svc = ImageServicer(store, in_use=lambda _id: True)

    async def reqs(*items: image_pb2.ImportRequest) -> AsyncIterator[image_pb2.ImportRequest]:
        for i in items:
            yield i

    async def main() -> None:
        with pytest.raises(errdefs.InvalidArgument, match="header"):
            await svc.Import(reqs(image_pb2.ImportRequest(chunk=b"x")), None)
        with pytest.raises(errdefs.InvalidArgument, match="empty"):
            await svc.Import(reqs(), None)
        with pytest.raises(errdefs.InvalidArgument, match="reference"):
            await svc.Import(reqs(image_pb2.ImportRequest(header=image_pb2.ImportHeader(reference="Bad Name"))), None)
        with pytest.raises(errdefs.NotFound, match="no such image: nope:1"):
            await svc.Inspect(image_pb2.ImageInspectRequest(reference="nope:1"), None)
        head = image_pb2.ImportRequest(header=image_pb2.ImportHeader(reference="used:1"))
        await svc.Import(reqs(head, image_pb2.ImportRequest(chunk=LAYER)), None)
        with pytest.raises(errdefs.FailedPrecondition, match="used by a container"):
            await svc.Remove(image_pb2.ImageRemoveRequest(reference="used:1"), None)

    asyncio.run(main())
    assert os.listdir(store.tmp_dir) == []


def test_unix_time_parsing() -> None:
    assert _unix("") == 0 and _unix("garbage") == 0
    assert _unix("1970-01-01T00:01:00Z") == 60
    assert _unix("1970-01-01T00:01:00.999999999+00:00") == 60
