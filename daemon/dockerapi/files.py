"""Files and space: archive HEAD/GET/PUT (docker cp), export, changes, commit; container and image
prune and system df through the cleanup service. The same domain calls as FilesService and
CleanupService."""

from __future__ import annotations

import base64
import json

from ctrd import errdefs
from ctrd.errdefs import InvalidArgument
from daemon.cleanup.service import Cleanup
from daemon.dockerapi import filters as flt
from daemon.dockerapi.backend import Backend
from daemon.dockerapi.errors import available
from daemon.dockerapi.http import Reply, Request, json_reply
from daemon.dockerapi.routing import Router
from daemon.files.paths import PathStat
from daemon.files.service import Files

STAT_HEADER = "X-Docker-Container-Path-Stat"


def stat_header(s: PathStat) -> str:
    doc = {"name": s.name, "size": s.size, "mode": s.go_mode, "mtime": s.mtime, "linkTarget": s.link_target}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def _pairs(f: flt.Filters) -> list[tuple[str, str]]:
    return [(k, v) for k, values in f.items() for v in values]


def register(r: Router, b: Backend) -> None:
    def files() -> Files:
        return available(b.files, "container files")

    def cleanup() -> Cleanup:
        return available(b.cleanup, "prune and disk usage")

    def path(req: Request) -> str:
        p = req.q("path")
        if not p:
            raise InvalidArgument("path: a path is required")
        return p

    async def archive_head(req: Request) -> Reply:
        s = await files().stat(req.params["id"], path(req))
        return Reply(200, b"", "", [(STAT_HEADER, stat_header(s))])

    async def archive_get(req: Request) -> Reply | None:
        if req.method == "HEAD":
            return await archive_head(req)
        parts = files().archive(req.params["id"], path(req))
        first = await anext(parts)  # the stat comes first; errors before it are proper HTTP errors
        if not isinstance(first, PathStat):
            raise errdefs.Internal("archive: the stat did not come first")
        stream = await req.stream("application/x-tar", headers=[(STAT_HEADER, stat_header(first))])
        async for chunk in parts:
            if isinstance(chunk, bytes):
                await stream.write(chunk)
        await stream.close()
        return None

    async def archive_put(req: Request) -> Reply:
        await files().put(req.params["id"], path(req), req.chunks(),
                          no_overwrite_dir_non_dir=req.qbool("noOverwriteDirNonDir"),
                          copy_uid_gid=req.qbool("copyUIDGID"))
        return Reply(200, b"", "")

    async def export(req: Request) -> None:
        parts = files().export(req.params["id"])
        stream = await req.stream("application/x-tar")
        async for chunk in parts:
            await stream.write(chunk)
        await stream.close()

    async def changes(req: Request) -> Reply:
        out = await files().changes(req.params["id"])
        return json_reply([{"Path": p, "Kind": k} for p, k in out] or None)

    async def commit(req: Request) -> Reply:
        body = await req.json()
        if body:
            raise InvalidArgument("commit: a config in the body is not supported by ctrd; use changes=")
        repo, tag = req.q("repo"), req.q("tag")
        ref = f"{repo}:{tag}" if repo and tag else repo
        image_id = await files().commit(req.q("container"), ref, req.q("comment"), req.q("author"),
                                        req.query.get("changes", []), pause=req.qbool("pause", True))
        return json_reply({"Id": image_id}, 201)

    async def container_prune(req: Request) -> Reply:
        f = flt.parse(req.q("filters"), frozenset({"label", "label!", "until"}))
        deleted, space = await cleanup().prune_containers(_pairs(f))
        return json_reply({"ContainersDeleted": deleted or None, "SpaceReclaimed": space})

    async def image_prune(req: Request) -> Reply:
        f = flt.parse(req.q("filters"), frozenset({"dangling", "label", "label!", "until"}))
        all_ = bool(f.get("dangling")) and f["dangling"][0].lower() in ("false", "0")
        items, space = await cleanup().prune_images(_pairs({k: v for k, v in f.items() if k != "dangling"}), all_)
        out = [{"Untagged": u} if u else {"Deleted": d} for u, d in items]
        return json_reply({"ImagesDeleted": out or None, "SpaceReclaimed": space})

    async def df(req: Request) -> Reply:
        u = await cleanup().usage()
        from daemon.containers import view

        vols = []
        if hasattr(b.manager, "volumes"):
            vols = [dict(v.to_json(), UsageData={"Size": -1, "RefCount": -1})
                    for v in b.manager.volumes.store.list_volumes()]
        return json_reply({
            "LayersSize": u.layers_size,
            "Images": [{"Id": i.id, "ParentId": "", "RepoTags": list(i.repo_tags), "RepoDigests": [],
                        "Created": int(i.created), "Size": i.size, "SharedSize": i.shared_size,
                        "VirtualSize": i.size, "Labels": None, "Containers": i.containers} for i in u.images],
            "Containers": [{"Id": cu.c.id, "Names": ["/" + cu.c.name], "Image": cu.c.config.image,
                            "ImageID": cu.c.image_id, "Command": view.command_line(cu.c),
                            "Created": int(cu.c.created), "Ports": [], "SizeRw": cu.size_rw,
                            "SizeRootFs": cu.size_root_fs, "Labels": dict(cu.c.config.labels),
                            "State": cu.c.status.value, "Status": view.status_text(cu.c), "Mounts": []}
                           for cu in u.containers],
            "Volumes": vols,
            "BuildCache": [],
        })

    r.add("HEAD", "/containers/{id}/archive", archive_head)
    r.add("GET", "/containers/{id}/archive", archive_get)
    r.add("PUT", "/containers/{id}/archive", archive_put)
    r.add("GET", "/containers/{id}/export", export)
    r.add("GET", "/containers/{id}/changes", changes)
    r.add("POST", "/commit", commit)
    r.add("POST", "/containers/prune", container_prune)
    r.add("POST", "/images/prune", image_prune)
    r.add("GET", "/system/df", df)
