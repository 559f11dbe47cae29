"""/networks/...: list, inspect, create, connect, disconnect, delete, prune (daemon.network.usernets)."""

from __future__ import annotations

from typing import Any

from ctrd import errdefs
from ctrd.errdefs import InvalidArgument
from daemon.containers.state import is_alive
from daemon.dockerapi import filters as flt
from daemon.dockerapi.backend import Backend
from daemon.dockerapi.errors import available
from daemon.dockerapi.http import Reply, Request, empty, json_reply
from daemon.dockerapi.routing import Router
from daemon.network.endpoint_view import builtin_id
from daemon.network.usernets import UserNetworks

BUILTIN = (("bridge", "bridge"), ("host", "host"), ("none", "null"))


def _builtin(name: str, driver: str, b: Backend) -> dict[str, Any]:
    containers: dict[str, Any] = {}
    if name == "bridge":
        for c in b.manager.store:
            n = c.network
            if c.host_config.network_mode == "bridge" and n is not None and n.ip_address and is_alive(c.status):
                containers[c.id] = {"Name": c.name, "EndpointID": "", "MacAddress": n.mac_address,
                                    "IPv4Address": f"{n.ip_address}/{n.ip_prefix_len}", "IPv6Address": ""}
    cfg = b.manager.cfg
    ipam_cfg = [{"Subnet": cfg.subnet}] if name == "bridge" else []
    return {"Name": name, "Id": builtin_id(name), "Created": "0001-01-01T00:00:00Z", "Scope": "local",
            "Driver": driver, "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": None, "Config": ipam_cfg},
            "Internal": False, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
            "ConfigOnly": False, "Containers": containers,
            "Options": {"com.docker.network.bridge.name": cfg.bridge} if name == "bridge" else {}, "Labels": {}}


def register(r: Router, b: Backend) -> None:
    def nets() -> UserNetworks:
        return available(b.networks, "user-defined networks")

    def forget_removed() -> None:
        nets().forget_containers(c.id for c in b.manager.store)

    def all_docs() -> list[dict[str, Any]]:
        forget_removed()
        docs = [_builtin(n, d, b) for n, d in BUILTIN]
        return docs + [nets().inspect(rec) for rec in nets().store]

    async def list_(req: Request) -> Reply:
        f = flt.parse(req.q("filters"), frozenset({"name", "id", "driver", "label", "scope", "type", "dangling"}))
        out = []
        for doc in all_docs():
            if f.get("name") and not any(v in doc["Name"] for v in f["name"]):
                continue
            if f.get("id") and not any(doc["Id"].startswith(v) for v in f["id"]):
                continue
            if f.get("driver") and doc["Driver"] not in f["driver"]:
                continue
            if f.get("label") and not flt.label_matches(doc["Labels"], f["label"]):
                continue
            if f.get("type"):
                kind = "builtin" if doc["Name"] in ("bridge", "host", "none") else "custom"
                if kind not in f["type"]:
                    continue
            out.append(doc)
        return json_reply(out)

    async def inspect(req: Request) -> Reply:
        ref = req.params["id"]
        for doc in all_docs():
            if ref in (doc["Name"], doc["Id"]) or (len(ref) >= 2 and doc["Id"].startswith(ref)):
                return json_reply(doc)
        raise errdefs.NotFound(f"network {ref} not found")

    async def create(req: Request) -> Reply:
        body = await req.json()
        name = body.get("Name") or ""
        if not name:
            raise InvalidArgument("Name: a network name is required")
        if name in ("bridge", "host", "none"):
            raise errdefs.FailedPrecondition(f"{name} is a pre-defined network and cannot be created")
        if body.get("Driver") not in (None, "", "bridge"):
            raise InvalidArgument(f"Driver: only the bridge driver is supported by ctrd (got {body['Driver']!r})")
        if body.get("EnableIPv6"):
            raise InvalidArgument("EnableIPv6: IPv6 networks are not supported by ctrd")
        ipam = body.get("IPAM") or {}
        configs = ipam.get("Config") or []
        if len(configs) > 1:
            raise InvalidArgument("IPAM.Config: one subnet per network")
        subnet = configs[0].get("Subnet", "") if configs else ""
        gateway = configs[0].get("Gateway", "") if configs else ""
        if configs and configs[0].get("IPRange"):
            raise InvalidArgument("IPAM.Config.IPRange: not supported by ctrd")
        rec = await nets().create(name, subnet=subnet, gateway=gateway, internal=bool(body.get("Internal")),
                                  labels=body.get("Labels") or {}, options=body.get("Options") or {})
        return json_reply({"Id": rec.id, "Warning": ""}, 201)

    async def delete(req: Request) -> Reply:
        ref = req.params["id"]
        if ref in ("bridge", "host", "none"):
            raise errdefs.FailedPrecondition(f"{ref} is a pre-defined network and cannot be removed")
        forget_removed()
        await nets().remove(ref)
        return empty()

    async def prune(req: Request) -> Reply:
        forget_removed()
        in_use = {c.host_config.network_mode for c in b.manager.store}
        removed = []
        for rec in list(nets().store):
            if rec.name not in in_use and rec.id not in in_use and not rec.endpoints:
                await nets().remove(rec.id)
                removed.append(rec.name)
        return json_reply({"NetworksDeleted": removed or None})

    async def connect(req: Request) -> Reply:
        body = await req.json()
        c = b.manager.get(str(body.get("Container", "")))
        rec = nets().store.get(req.params["id"])
        if c.host_config.network_mode in (rec.name, rec.id):
            raise errdefs.AlreadyExists(f"container {c.name} is already connected to network {rec.name}")
        mode = c.host_config.network_mode
        if mode in ("host", "none") or mode.startswith("container:"):
            raise errdefs.FailedPrecondition(f"container {c.name} uses network mode {mode}: it cannot join other networks")
        ep = body.get("EndpointConfig") or {}
        ip = str((ep.get("IPAMConfig") or {}).get("IPv4Address") or "")
        sandbox = c.network.sandbox_key if is_alive(c.status) and c.network is not None else ""
        await nets().connect(rec.id, c.id, name=c.name, aliases=list(ep.get("Aliases") or []), sandbox_key=sandbox,
                             ip=ip)
        return Reply(200, b"", "")

    async def disconnect(req: Request) -> Reply:
        body = await req.json()
        c = b.manager.get(str(body.get("Container", "")))
        await nets().disconnect(req.params["id"], c.id, name=c.name)
        return Reply(200, b"", "")

    r.add("GET", "/networks", list_)
    r.add("POST", "/networks/create", create)
    r.add("POST", "/networks/prune", prune)
    r.add("GET", "/networks/{id}", inspect)
    r.add("DELETE", "/networks/{id}", delete)
    r.add("POST", "/networks/{id}/connect", connect)
    r.add("POST", "/networks/{id}/disconnect", disconnect)
