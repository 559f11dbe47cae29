"""/volumes/...: list, create, inspect, delete, prune over the volume store (daemon.volumes)."""

from __future__ import annotations

import asyncio

from ctrd.errdefs import InvalidArgument
from daemon.dockerapi import filters as flt
from daemon.dockerapi.backend import Backend
from daemon.dockerapi.http import Reply, Request, empty, json_reply
from daemon.dockerapi.routing import Router
from daemon.volumes.store import VolumeStore


def register(r: Router, b: Backend) -> None:
    def store() -> VolumeStore:
        return b.manager.volumes.store

    async def list_(req: Request) -> Reply:
        f = flt.parse(req.q("filters"), frozenset({"name", "label", "dangling", "driver"}))
        vols = store().list_volumes([(k, v) for k, values in f.items() for v in values])
        return json_reply({"Volumes": [v.to_json() for v in vols], "Warnings": None})

    async def create(req: Request) -> Reply:
        body = await req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("request body: want a JSON object")
        v, _ = await asyncio.to_thread(store().create, body.get("Name") or "", body.get("Driver") or "",
                                       body.get("Labels") or {}, body.get("DriverOpts") or {})
        return json_reply(v.to_json(), 201)

    async def inspect(req: Request) -> Reply:
        return json_reply(store().get(req.params["name"]).to_json())

    async def delete(req: Request) -> Reply:
        await asyncio.to_thread(store().remove, req.params["name"], req.qbool("force"))
        return empty()

    async def prune(req: Request) -> Reply:
        f = flt.parse(req.q("filters"), frozenset({"label", "all"}))
        all_ = bool(f.get("all")) and f["all"][0].lower() in ("1", "true")
        removed, space = await asyncio.to_thread(store().prune, all_, [("label", v) for v in f.get("label", [])])
        return json_reply({"VolumesDeleted": removed or None, "SpaceReclaimed": space})

    r.add("GET", "/volumes", list_)
    r.add("POST", "/volumes/create", create)
    r.add("POST", "/volumes/prune", prune)
    r.add("GET", "/volumes/{name}", inspect)
    r.add("DELETE", "/volumes/{name}", delete)
