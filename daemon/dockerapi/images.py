"""/images/...: list, inspect, history, create (pull, with docker's JSON progress stream), push, tag,
delete, get (save), load; credentials from the X-Registry-Auth header."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ctrd import errdefs, timefmt
from ctrd.dockerconfig import Credentials
from ctrd.errdefs import CtrdError, InvalidArgument
from daemon.distribution.progress import Event
from daemon.dockerapi import filters as flt
from daemon.dockerapi.backend import Backend
from daemon.dockerapi.errors import HTTPError, available
from daemon.dockerapi.http import Reply, Request, Stream, json_reply
from daemon.dockerapi.routing import Router, version_tuple
from daemon.images import view

T = TypeVar("T")
_CHUNK = 1 << 20


def credentials(req: Request) -> Credentials:
    raw = req.headers.get("x-registry-auth", "")
    if not raw:
        return Credentials("", "", "")
    try:
        doc = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error):
        raise InvalidArgument("X-Registry-Auth: invalid base64 JSON") from None
    if not isinstance(doc, dict):
        return Credentials("", "", "")
    return Credentials(doc.get("username", "") or "", doc.get("password", "") or "", doc.get("identitytoken", "") or "")


def _unix(created: str) -> int:
    try:
        return int(timefmt.parse_rfc3339(created))
    except ValueError:
        return 0


def _progress(ev: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"status": ev.status}
    if ev.id:
        out["id"] = ev.id
    if ev.total or ev.current:
        out["progressDetail"] = {"current": ev.current, "total": ev.total}
    return out


async def _run_streamed(stream: Stream, run: Callable[[Callable[[Event], None]], Awaitable[T]]) -> T | None:
    """Run a registry verb, writing its progress as docker's JSON lines; an error is the last line."""
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    task = asyncio.ensure_future(run(queue.put_nowait))
    task.add_done_callback(lambda _t: queue.put_nowait(None))
    try:
        while (ev := await queue.get()) is not None:
            await stream.write_json(_progress(ev))
        try:
            return task.result()
        except CtrdError as exc:
            await stream.write_json({"errorDetail": {"message": str(exc)}, "error": str(exc)})
            return None
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def register(r: Router, b: Backend) -> None:
    def store() -> Any:
        return available(b.images, "images")

    def dist() -> Any:
        return available(b.dist, "registries")

    def digests(image_id: str) -> list[str]:
        return b.dist.repo_digests(image_id) if b.dist is not None else []

    async def list_(req: Request) -> Reply:
        f = flt.parse(req.q("filters"), frozenset({"reference", "dangling", "label", "before", "since"}))
        images = await asyncio.to_thread(store().list)
        in_use: dict[str, int] = {}
        for c in b.manager.store:
            in_use[c.image_id] = in_use.get(c.image_id, 0) + 1
        out = []
        for im in images:
            if f.get("dangling") and (("true" in f["dangling"]) == bool(im.repo_tags)):
                continue
            if f.get("reference") and not any(_ref_match(t, v) for t in im.repo_tags for v in f["reference"]):
                continue
            labels = dict(im.config.labels or {})
            if f.get("label") and not flt.label_matches(labels, f["label"]):
                continue
            out.append({"Id": im.id, "ParentId": "", "RepoTags": list(im.repo_tags), "RepoDigests": digests(im.id),
                        "Created": _unix(im.created), "Size": im.size, "SharedSize": -1, "VirtualSize": im.size,
                        "Labels": labels or None, "Containers": in_use.get(im.id, 0) if req.qbool("shared-size")
                        else -1})
        return json_reply(out)

    async def inspect(req: Request) -> Reply:
        doc = await asyncio.to_thread(view.inspect, store(), req.params["name"])
        doc["RepoDigests"] = digests(doc["Id"])
        return json_reply(shape_image(doc, version_tuple(req.api_version)))

    async def history(req: Request) -> Reply:
        im = await asyncio.to_thread(store().get, req.params["name"])
        created = _unix(im.created)
        rows: list[dict[str, Any]] = [{"Id": "<missing>", "Created": created, "CreatedBy": "", "Tags": None, "Size": 0, "Comment": ""}
                for _ in im.diff_ids]
        if rows:
            rows[-1].update({"Id": im.id, "Tags": list(im.repo_tags) or None, "Size": im.size})
        else:
            rows = [{"Id": im.id, "Created": created, "CreatedBy": "", "Tags": list(im.repo_tags) or None,
                     "Size": im.size, "Comment": im.comment}]
        return json_reply(list(reversed(rows)))

    async def create(req: Request) -> None:
        if req.q("fromSrc"):
            raise HTTPError(501, "fromSrc: image import through the Docker API is not supported by ctrd yet")
        image = req.q("fromImage")
        if not image:
            raise InvalidArgument("fromImage: an image name is required")
        tag = req.q("tag")
        ref = image
        if tag:
            ref = f"{image}@{tag}" if tag.startswith("sha256:") else f"{image}:{tag}"
        creds = credentials(req)
        d = dist()
        platform = req.q("platform")
        stream = await req.stream()
        await _run_streamed(stream, lambda emit: d.pull(ref, platform, creds, emit))  # its last lines: Digest, Status
        await stream.close()

    async def push(req: Request) -> None:
        name = req.params["name"]
        tag = req.q("tag")
        ref = f"{name}:{tag}" if tag else name
        creds = credentials(req)
        d = dist()
        stream = await req.stream()
        res = await _run_streamed(stream, lambda emit: d.push(ref, creds, emit))
        if res is not None:
            await stream.write_json({"progressDetail": {}, "aux": {"Tag": tag or "latest", "Digest": res[0], "Size": 0}})
        await stream.close()

    async def tag(req: Request) -> Reply:
        repo = req.q("repo")
        if not repo:
            raise InvalidArgument("repo: a repository name is required")
        target = f"{repo}:{req.q('tag')}" if req.q("tag") else repo
        await asyncio.to_thread(store().tag, req.params["name"], target)
        return Reply(201, b"", "")

    async def delete(req: Request) -> Reply:
        untagged, deleted = await asyncio.to_thread(store().remove, req.params["name"], req.qbool("force"), b.image_in_use)
        if deleted and b.dist is not None:
            await asyncio.to_thread(b.dist.gc)
        return json_reply([{"Untagged": t} for t in untagged] + [{"Deleted": d} for d in deleted])

    async def save(req: Request) -> None:
        names = [req.params["name"]] if "name" in req.params else [n for v in req.query.get("names", []) for n in
                                                                       v.split(",") if n]
        if not names:
            raise InvalidArgument("names: at least one image is required")
        d = dist()
        with tempfile.TemporaryFile(dir=store().tmp_dir) as spool:
            await asyncio.to_thread(d.save, names, spool)
            await asyncio.to_thread(spool.seek, 0)
            stream = await req.stream("application/x-tar")
            while chunk := await asyncio.to_thread(spool.read, _CHUNK):
                await stream.write(chunk)
            await stream.close()

    async def load(req: Request) -> None:
        st = store()
        with tempfile.TemporaryFile(dir=st.tmp_dir) as spool:
            async for chunk in req.chunks():
                await asyncio.to_thread(spool.write, chunk)
            await asyncio.to_thread(spool.seek, 0)
            try:
                loaded = await asyncio.to_thread(st.load_archive, spool)
            except errdefs.CtrdError as exc:
                raise InvalidArgument(f"load: {exc}") from None
        stream = await req.stream()
        for line in loaded:  # "Loaded image: name:tag" / "Loaded image ID: sha256:..."
            await stream.write_json({"stream": line + "\n"})
        await stream.close()

    async def unsupported(req: Request) -> Reply:
        raise HTTPError(501, "image search is not supported by ctrd")

    name = "{name:.+}"
    r.add("GET", "/images/json", list_)
    r.add("POST", "/images/create", create)
    r.add("POST", "/images/load", load)
    r.add("GET", "/images/get", save)
    r.add("GET", "/images/search", unsupported)
    r.add("GET", f"/images/{name}/json", inspect)
    r.add("GET", f"/images/{name}/history", history)
    r.add("POST", f"/images/{name}/push", push)
    r.add("POST", f"/images/{name}/tag", tag)
    r.add("GET", f"/images/{name}/get", save)
    r.add("DELETE", f"/images/{name}", delete)


CONTAINER_CONFIG_KEYS: tuple[tuple[str, Any], ...] = (
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False), ("AttachStdout", False),
    ("AttachStderr", False), ("Tty", False), ("OpenStdin", False), ("StdinOnce", False), ("Env", None),
    ("Cmd", None), ("Image", ""), ("Volumes", None), ("WorkingDir", ""), ("Entrypoint", None), ("OnBuild", None),
    ("Labels", None),
)


def shape_image(doc: dict[str, Any], version: tuple[int, int]) -> dict[str, Any]:
    """Image inspect as docker answers the version asked for: before 1.45 with Container,
    ContainerConfig and VirtualSize; before 1.47 with the container-only fields in Config."""
    cfg = {k: v for k, v in doc.get("Config", {}).items() if not (k in ("ExposedPorts", "StopSignal") and not v)}
    if version < (1, 47):
        for key, zero in CONTAINER_CONFIG_KEYS:
            cfg.setdefault(key, zero)
    else:
        for key in ("Hostname", "Domainname"):
            cfg.pop(key, None)
    doc["Config"] = cfg
    if version < (1, 45):
        doc.setdefault("Container", "")
        doc["ContainerConfig"] = dict(CONTAINER_CONFIG_KEYS)
        doc.setdefault("VirtualSize", doc.get("Size", 0))
    return doc


def _ref_match(tag: str, pattern: str) -> bool:
    import fnmatch

    if fnmatch.fnmatch(tag, pattern) or fnmatch.fnmatch(tag, pattern + ":*"):
        return True
    short = tag.removeprefix("docker.io/").removeprefix("library/")
    return fnmatch.fnmatch(short, pattern) or fnmatch.fnmatch(short, pattern + ":*")
