"""Connection takeover for attach (and exec start): docker's hijacked stream over the domain's
attach sessions, the same ones the gRPC Attach servicer relays.

The session is opened before the 101 goes out, so a client that starts the container right after
(docker run: attach, wait, start) misses no byte. Client → server bytes are stdin; the client's
half-close ends stdin only (the output keeps flowing until the process exits or detaches). Without
a terminal every output chunk is framed (streams.frame); with one, raw bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable

from ctrd.errdefs import CtrdError
from ctrd.v1 import container_pb2 as pb
from daemon.dockerapi.http import Hijacked, Request
from daemon.dockerapi.streams import frame, stream_type

Opener = Callable[[AsyncIterator[pb.AttachRequest]], AsyncIterator[pb.AttachResponse]]


async def hijacked_session(req: Request, open_session: Opener, tty: bool) -> None:
    ready = asyncio.Event()
    conn: list[Hijacked] = []

    async def requests() -> AsyncIterator[pb.AttachRequest]:
        await ready.wait()
        while data := await conn[0].read():
            yield pb.AttachRequest(stdin=data)
        # the end of the request stream is the end of this client's stdin (a half-close)

    session = open_session(requests())
    try:
        first = await anext(session)  # registered (or refused with a proper HTTP error) before the 101
        if first.WhichOneof("msg") == "started":
            tty = first.started.tty
        conn.append(await req.hijack(stream_type(req.api_version, tty)))
        ready.set()
        h = conn[0]
        with contextlib.suppress(CtrdError, ConnectionError, OSError):
            async for resp in session:
                kind = resp.WhichOneof("msg")
                if kind == "output":
                    data = resp.output.data
                    await h.write(data if tty else frame(resp.output.stream, data))
                elif kind in ("exit", "detached"):
                    break
    finally:
        close = getattr(session, "aclose", None)
        if close is not None and inspect.iscoroutinefunction(close):
            await close()
        if conn:
            await conn[0].close()


def open_message(req: Request, cid: str, exec_id: str = "") -> pb.AttachOpen:
    return pb.AttachOpen(id=cid, exec_id=exec_id, stdin=req.qbool("stdin"), stdout=req.qbool("stdout"),
                         stderr=req.qbool("stderr"), detach_keys=req.q("detachKeys"))
