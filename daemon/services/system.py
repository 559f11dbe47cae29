"""SystemService: version, info and the events stream."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc.aio

from ctrd.cgwarm import cgroup_v2_host
from ctrd.v1 import system_pb2 as pb
from ctrd.v1 import system_pb2_grpc
from daemon import __version__ as VERSION
from daemon.containers.manager import ContainerManager

API_VERSION = "1.0"
Ctx = grpc.aio.ServicerContext[Any, Any]


def cgroup_version() -> str:
    return "2" if cgroup_v2_host() else "1"


class SystemServicer(system_pb2_grpc.SystemServiceServicer):
    def __init__(self, manager: ContainerManager, image_count: Callable[[], int]) -> None:
        self.m = manager
        self.image_count = image_count

    async def Version(self, request: pb.VersionRequest, context: Ctx) -> pb.VersionResponse:
        u = os.uname()
        return pb.VersionResponse(
            version=VERSION, api_version=API_VERSION, python_version=platform.python_version(),
            os=u.sysname.lower(), arch=u.machine, kernel_version=u.release,
            runtime=self.m.cfg.runtime or "ctrd-runtime (in-process)",
        )

    async def Info(self, request: pb.InfoRequest, context: Ctx) -> pb.InfoResponse:
        u = os.uname()
        cfg = self.m.cfg
        info: dict[str, Any] = {
            **self.m.counts(),
            "Images": self.image_count(),
            "Driver": "overlay2",
            "DockerRootDir": str(cfg.root),
            "ExecRoot": str(cfg.exec_root),
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "CgroupParent": cfg.cgroup_parent,
            "KernelVersion": u.release,
            "OperatingSystem": _os_name(),
            "OSType": "linux",
            "Architecture": u.machine,
            "NCPU": os.cpu_count() or 1,
            "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "Name": u.nodename,
            "ServerVersion": VERSION,
            "LiveRestoreEnabled": cfg.live_restore,
            "DefaultRuntime": cfg.runtime or "ctrd-runtime",
            "Bridge": cfg.bridge,
            "Subnet": cfg.subnet,
            "LoggingDriver": "json-file",
        }
        return pb.InfoResponse(json=json.dumps(info))

    async def Events(self, request: pb.EventsRequest, context: Ctx) -> AsyncIterator[pb.EventsResponse]:
        async for ev in self.m.events.subscribe(request.since, request.until, dict(request.filters)):
            yield pb.EventsResponse(
                type=ev.type, action=ev.action, id=ev.id, attributes=dict(ev.attributes), time_nano=ev.time_nano
            )


def _os_name() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", "linux")
    except OSError:
        return "linux"
