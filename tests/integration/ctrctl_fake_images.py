"""The fake daemon's ImageService (tags in a dict) and SystemService (version, info, events)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ctrd import errdefs
from ctrd.v1 import image_pb2, image_pb2_grpc, system_pb2, system_pb2_grpc
from tests.integration.ctrctl_fake_wire import Call, client_stream, server_stream, unary

if TYPE_CHECKING:
    from tests.integration.ctrctl_fake import FakeDaemon


class Images(image_pb2_grpc.ImageServiceServicer):
    def __init__(self, fake: FakeDaemon) -> None:
        self.fake = fake

    def _find(self, ref: str) -> str:
        for ident, tags in self.fake.images.items():
            if ref in tags or ref + ":latest" in tags or ident.removeprefix("sha256:").startswith(ref.removeprefix("sha256:")):
                return ident
        raise errdefs.NotFound(f"no such image: {ref}")

    @client_stream
    def Import(self, reqs: Iterator[image_pb2.ImportRequest], ctx: Call) -> image_pb2.ImportResponse:
        header, size = None, 0
        for r in reqs:
            if r.HasField("header"):
                header = r.header
            else:
                size += len(r.chunk)
        ident = "sha256:" + secrets.token_hex(32)
        ref = header.reference if header else ""
        self.fake.images[ident] = [ref if ":" in ref else ref + ":latest"] if ref else []
        self.fake.record("ImportBytes", size)
        return image_pb2.ImportResponse(id=ident)

    @client_stream
    def Load(self, reqs: Iterator[image_pb2.LoadRequest], ctx: Call) -> image_pb2.LoadResponse:
        size = sum(len(r.chunk) for r in reqs)
        if size == 0:
            raise errdefs.InvalidArgument("archive: empty input")
        ident = "sha256:" + secrets.token_hex(32)
        self.fake.images[ident] = ["loaded:latest"]
        self.fake.record("LoadBytes", size)
        return image_pb2.LoadResponse(loaded=["Loaded image: loaded:latest"])

    @unary
    def List(self, req: image_pb2.ImageListRequest, ctx: Call) -> image_pb2.ImageListResponse:
        return image_pb2.ImageListResponse(images=[
            image_pb2.ImageSummary(id=i, repo_tags=t, created=int(time.time()) - 3600, size=4_260_000)
            for i, t in self.fake.images.items()])

    @unary
    def Inspect(self, req: image_pb2.ImageInspectRequest, ctx: Call) -> image_pb2.ImageInspectResponse:
        ident = self._find(req.reference)
        return image_pb2.ImageInspectResponse(json=json.dumps({"Id": ident, "RepoTags": self.fake.images[ident]}))

    @unary
    def Remove(self, req: image_pb2.ImageRemoveRequest, ctx: Call) -> image_pb2.ImageRemoveResponse:
        ident = self._find(req.reference)
        tags = self.fake.images.pop(ident)
        return image_pb2.ImageRemoveResponse(untagged=tags, deleted=[ident])


class System(system_pb2_grpc.SystemServiceServicer):
    def __init__(self, fake: FakeDaemon) -> None:
        self.fake = fake

    @unary
    def Version(self, req: system_pb2.VersionRequest, ctx: Call) -> system_pb2.VersionResponse:
        return system_pb2.VersionResponse(version="0.0-fake", api_version="1", python_version="3", os="linux",
                                          arch="x86_64", kernel_version="6", runtime="fake")

    @unary
    def Info(self, req: system_pb2.InfoRequest, ctx: Call) -> system_pb2.InfoResponse:
        n = len(self.fake.containers)
        return system_pb2.InfoResponse(json=json.dumps({"Containers": n, "ContainersRunning": 0, "Images": 1,
                                                        "Driver": "overlay2", "FakeKey": True}))

    @server_stream
    def Events(self, req: system_pb2.EventsRequest, ctx: Call) -> Iterator[system_pb2.EventsResponse]:
        f = self.fake
        with f.lock:
            i = 0 if req.since else len(f.events)
            f.subscriptions += 1  # from here on no event is missed (tests wait for this)
            f.lock.notify_all()
        while ctx.is_active():
            with f.lock:
                batch, i = f.events[i:], len(f.events)
            for ev in batch:
                if req.since and ev.time_nano < req.since * 1e9:
                    continue
                if req.until and ev.time_nano > req.until * 1e9:
                    return
                yield ev
            if req.until and time.time() > req.until:
                return
            with f.lock:
                f.lock.wait(0.2)
