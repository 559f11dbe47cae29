"""The Docker Engine API listener: a unix socket served by the daemon process itself.

Every connection is an h11 state machine on asyncio streams (daemon/dockerapi/http.py says why);
each request is routed (routing.py) to a handler of its resource module, which calls the domain
services (backend.py). Errors are ctrd.errdefs, answered as docker does: a status code
(errors.py) and {"message": ...}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path

import h11

from ctrd.errdefs import CtrdError
from daemon import __version__ as VERSION
from daemon.dockerapi import containers, exec, files, images, networks, system, volumes
from daemon.dockerapi.backend import Backend
from daemon.dockerapi.errors import HTTPError, status_of
from daemon.dockerapi.http import Conn, Reply, Request
from daemon.dockerapi.routing import API_VERSION, Router

log = logging.getLogger(__name__)

SERVER_HEADERS = [
    ("Server", f"ctrd/{VERSION} (linux)"),
    ("Api-Version", API_VERSION),
    ("Docker-Experimental", "false"),
    ("Ostype", "linux"),
]


def build_router(b: Backend) -> Router:
    r = Router()
    system.register(r, b)
    files.register(r, b)
    containers.register(r, b)
    exec.register(r, b)
    images.register(r, b)
    networks.register(r, b)
    volumes.register(r, b)
    return r


class DockerAPI:
    def __init__(self, backend: Backend) -> None:
        self.router = build_router(backend)
        self.server: asyncio.Server | None = None
        self.path: Path | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False

    async def start(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a dead daemon's socket (the caller holds the root lock)
        old = os.umask(0o117)
        try:
            self.server = await asyncio.start_unix_server(self._serve, path=str(path), limit=1 << 20)
        finally:
            os.umask(old)
        os.chmod(path, 0o660)
        self.path = path
        log.info("Docker Engine API listening on %s", path)

    async def close(self) -> None:
        self.closing = True
        if self.server is not None:
            self.server.close()
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2.0)
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)  # type: ignore[arg-type]
        conn = Conn(reader, writer, SERVER_HEADERS)
        try:
            await self._loop(conn)
        except (ConnectionError, asyncio.IncompleteReadError, h11.ProtocolError) as exc:
            log.debug("docker api connection: %s", exc)
        except asyncio.CancelledError:
            pass
        finally:
            self.tasks.discard(task)  # type: ignore[arg-type]
            with contextlib.suppress(Exception):
                writer.close()

    async def _loop(self, conn: Conn) -> None:
        while True:
            try:
                ev = await conn.next_event()
            except h11.RemoteProtocolError as exc:
                with contextlib.suppress(Exception):
                    await conn.send(h11.Response(status_code=400, headers=[("Content-Length", "0")]))
                log.debug("docker api: bad request: %s", exc)
                return
            if not isinstance(ev, h11.Request):
                return  # ConnectionClosed, PAUSED
            req = Request(conn, ev)
            await self._dispatch(req)
            if conn.hijacked:
                return
            if conn.h.our_state is h11.MUST_CLOSE or conn.h.their_state is not h11.DONE:
                return
            if conn.h.our_state is not h11.DONE:
                return
            conn.h.start_next_cycle()

    async def _dispatch(self, req: Request) -> None:
        try:
            handler = self.router.resolve(req)
            reply = await handler(req)
            if reply is not None:
                await req.send(reply)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if req.started and task is not None and task.uncancel() == 0 and not self.closing:
                raise ConnectionResetError("client went away") from None  # cancelled by the EOF watcher
            raise
        except (CtrdError, HTTPError) as exc:
            await self._error(req, exc)
        except (ConnectionError, h11.ProtocolError):
            raise
        except Exception as exc:
            log.exception("docker api %s %s", req.method, req.path)
            await self._error(req, exc)

    async def _error(self, req: Request, exc: BaseException) -> None:
        if req.started:
            raise ConnectionResetError(f"error after the answer started: {exc}")
        body = json.dumps({"message": str(exc)}).encode() + b"\n"
        await req.send(Reply(status_of(exc), body))
