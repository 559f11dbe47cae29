"""/_ping, /version, /info, /events, /system/df, /auth and the parts docker has that ctrd does not
(swarm, plugins, build) answered with docker's own "not available" shapes."""

from __future__ import annotations

import asyncio
import os
import platform
import time
from typing import Any

from ctrd import timefmt
from ctrd.cgwarm import cgroup_v2_host
from daemon import __version__ as VERSION
from daemon.dockerapi import filters as flt
from daemon.dockerapi.backend import Backend
from daemon.dockerapi.errors import HTTPError, available
from daemon.dockerapi.http import Reply, Request, json_reply
from daemon.dockerapi.params import time_param
from daemon.dockerapi.routing import API_VERSION, MIN_API_VERSION, Router

GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64"}
SWARM_INACTIVE = {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None}
NOT_SWARM = ("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect "
             "this node to swarm and try again.")


def go_arch() -> str:
    m = os.uname().machine
    return GO_ARCH.get(m, m)


def _os_name() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", "linux")
    except OSError:
        return "linux"


def _cgroup_version() -> str:
    return "2" if cgroup_v2_host() else "1"


def version_json() -> dict[str, Any]:
    u = os.uname()
    details = {"ApiVersion": API_VERSION, "Arch": go_arch(), "BuildTime": "", "Experimental": "false",
               "GitCommit": "", "GoVersion": "python" + platform.python_version(), "KernelVersion": u.release,
               "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}
    return {
        "Platform": {"Name": "ctrd"},
        "Components": [{"Name": "Engine", "Version": VERSION, "Details": details}],
        "Version": VERSION, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
        "GoVersion": "python" + platform.python_version(), "Os": "linux", "Arch": go_arch(),
        "KernelVersion": u.release, "BuildTime": "",
    }


def register(r: Router, b: Backend) -> None:
    m = b.manager

    async def ping(req: Request) -> Reply:
        headers = [("Builder-Version", ""), ("Cache-Control", "no-cache, no-store, must-revalidate"),
                   ("Pragma", "no-cache"), ("Swarm", "inactive")]
        return Reply(200, b"OK", "text/plain; charset=utf-8", headers)

    async def version(req: Request) -> Reply:
        return json_reply(version_json())

    async def info(req: Request) -> Reply:
        u = os.uname()
        cfg = m.cfg
        images = len(await asyncio.to_thread(b.images.list)) if b.images is not None else 0
        runtime = cfg.runtime or "ctrd-runtime"
        return json_reply({
            "ID": "", **m.counts(), "Images": images, "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": None,
                        "Log": ["json-file"]},
            "MemoryLimit": True, "SwapLimit": False, "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True,
            "CPUSet": True, "PidsLimit": True, "IPv4Forwarding": cfg.ip_forward, "BridgeNfIptables": False,
            "BridgeNfIp6tables": False, "Debug": cfg.log_level == "debug", "NFd": _nfd(), "OomKillDisable": False,
            "NGoroutines": len(asyncio.all_tasks()), "SystemTime": timefmt.rfc3339(time.time()),
            "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs", "CgroupVersion": _cgroup_version(),
            "NEventsListener": 0, "KernelVersion": u.release, "OperatingSystem": _os_name(), "OSVersion": "",
            "OSType": "linux", "Architecture": u.machine, "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": None,
                               "AllowNondistributableArtifactsHostnames": None,
                               "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {},
                               "Mirrors": list(cfg.registry_mirrors)},
            "NCPU": os.cpu_count() or 1, "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "GenericResources": None, "DockerRootDir": str(cfg.root), "HttpProxy": "", "HttpsProxy": "",
            "NoProxy": "", "Name": u.nodename, "Labels": [], "ExperimentalBuild": False, "ServerVersion": VERSION,
            "Runtimes": {runtime: {"path": runtime}}, "DefaultRuntime": runtime, "Swarm": SWARM_INACTIVE,
            "LiveRestoreEnabled": cfg.live_restore, "Isolation": "", "InitBinary": "",
            "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""},
            "SecurityOptions": ["name=seccomp,profile=" + (cfg.seccomp_profile or "builtin")],
            "CDISpecDirs": [], "Warnings": None,
        })

    async def events(req: Request) -> None:
        now = time.time()
        since = time_param(req.q("since"), now, "since")
        until = time_param(req.q("until"), now, "until")
        wanted = flt.parse(req.q("filters"), frozenset({"container", "event", "type", "image", "label", "network"}))
        stream = await req.stream("application/json")
        async for ev in m.events.subscribe(since, until, {}):
            if not flt.event_matches(wanted, ev):
                continue
            attrs = dict(ev.attributes)
            await stream.write_json({
                "status": ev.action, "id": ev.id, "from": attrs.get("image", ""), "Type": ev.type,
                "Action": ev.action, "Actor": {"ID": ev.id, "Attributes": attrs}, "scope": "local",
                "time": ev.time_nano // 1_000_000_000, "timeNano": ev.time_nano,
            })
        await stream.close()

    async def auth(req: Request) -> Reply:
        body = await req.json()
        dist = available(b.dist, "registries")
        from ctrd.dockerconfig import Credentials

        creds = Credentials(body.get("username", ""), body.get("password", ""), body.get("identitytoken", ""))
        status = await dist.login(body.get("serveraddress", ""), creds)
        return json_reply({"Status": status or "Login Succeeded", "IdentityToken": ""})

    async def not_swarm(req: Request) -> Reply:
        raise HTTPError(503, NOT_SWARM)

    async def no_plugins(req: Request) -> Reply:
        if req.method == "GET" and req.path.rstrip("/").endswith("/plugins"):
            return json_reply([])
        raise HTTPError(501, "plugins are not supported by ctrd")

    async def no_build(req: Request) -> Reply:
        raise HTTPError(501, "image build is not supported by ctrd")

    r.add("GET", "/_ping", ping)
    r.add("GET", "/version", version)
    r.add("GET", "/info", info)
    r.add("GET", "/events", events)
    r.add("POST", "/auth", auth)
    for path in ("/swarm{rest:.*}", "/nodes{rest:.*}", "/services{rest:.*}", "/tasks{rest:.*}",
                 "/secrets{rest:.*}", "/configs{rest:.*}"):
        for method in ("GET", "POST", "DELETE"):
            r.add(method, path, not_swarm)
    for method in ("GET", "POST", "DELETE"):
        r.add(method, "/plugins{rest:.*}", no_plugins)
    r.add("POST", "/build", no_build)
    r.add("POST", "/session", no_build)


def _nfd() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0
