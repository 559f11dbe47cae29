"""/containers/{id}/exec and /exec/{id}/...: create, start (hijacked or detached), inspect, resize,
over the domain's exec table (the calls the gRPC ExecCreate/ExecStart/ExecInspect/Attach make)."""

from __future__ import annotations

from typing import Any

from ctrd import errdefs
from ctrd.errdefs import InvalidArgument
from ctrd.v1 import container_pb2 as pb
from daemon.dockerapi import attach
from daemon.dockerapi.backend import Backend
from daemon.dockerapi.http import Reply, Request, json_reply
from daemon.dockerapi.params import strs
from daemon.dockerapi.routing import Router


def _console_size(value: Any) -> tuple[int, int] | None:
    """docker's ConsoleSize [height, width] (API 1.42+), the terminal's size from the start."""
    if not value:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise InvalidArgument("ConsoleSize: want [height, width]")
    return (value[0], value[1]) if value[0] and value[1] else None


def register(r: Router, b: Backend) -> None:
    m = b.manager

    async def create(req: Request) -> Reply:
        body = await req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("request body: want a JSON object")
        try:
            c = m.get(req.params["id"])
        except errdefs.NotFound:
            raise errdefs.NotFound(f"No such container: {req.params['id']}") from None
        cmd = strs(body.get("Cmd"), "Cmd")
        if not cmd:
            raise InvalidArgument("No exec command specified")
        exec_id = m.exec_create(
            c.id, cmd, strs(body.get("Env"), "Env"), body.get("User") or "", body.get("WorkingDir") or "",
            bool(body.get("Tty")), bool(body.get("AttachStdin")), bool(body.get("AttachStdout")),
            bool(body.get("AttachStderr")), bool(body.get("Privileged")), body.get("DetachKeys") or "",
            _console_size(body.get("ConsoleSize")),
        )
        return json_reply({"Id": exec_id}, 201)

    async def start(req: Request) -> Reply | None:
        body = await req.json()
        exec_id = req.params["id"]
        info = m.exec_inspect(exec_id)
        if body.get("Detach"):
            await m.exec_start(exec_id)
            return Reply(200, b"", "")
        o = pb.AttachOpen(id=info["ContainerID"], exec_id=exec_id, stdin=bool(info["OpenStdin"]),
                          stdout=bool(info["OpenStdout"]), stderr=bool(info["OpenStderr"]),
                          detach_keys=info.get("DetachKeys") or "")
        await attach.hijacked_session(req, lambda requests: m.exec_attach(o, requests),
                                      bool(info["ProcessConfig"]["tty"]))
        return None

    async def inspect(req: Request) -> Reply:
        return json_reply(m.exec_inspect(req.params["id"]))

    async def resize(req: Request) -> Reply:
        await m.exec_resize(req.params["id"], req.qint("h", 0) or 0, req.qint("w", 0) or 0)
        return Reply(200, b"", "")

    r.add("POST", "/containers/{id}/exec", create)
    r.add("POST", "/exec/{id}/start", start)
    r.add("GET", "/exec/{id}/json", inspect)
    r.add("POST", "/exec/{id}/resize", resize)
