"""How the fake's plain (threaded) handlers are served by a grpc.aio server with the daemon's own
wire mapping (daemon.wiremap): a handler raises ctrd.errdefs errors and the mapping turns them into
statuses (ctrd.errgrpc), exactly as in ctrd; nothing here knows a status code.

A handler runs in the fake's thread pool (it blocks on locks and subprocesses); a streaming handler
is a plain generator stepped there. `Call.is_active()` turns false when the RPC ends (client gone,
server stopping), so a following handler returns.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import Any, Protocol

import grpc.aio


class Call:
    """What a fake handler may ask of its RPC (thread-safe: set from the loop, read from the pool)."""

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._ended = threading.Event()
        context.add_done_callback(lambda _ctx: self._ended.set())

    def is_active(self) -> bool:
        return not self._ended.is_set()

    def end(self) -> None:
        self._ended.set()


class Served(Protocol):
    fake: Any  # FakeDaemon: records calls, owns the thread pool


def _pool(servicer: Served) -> Executor:
    pool: Executor = servicer.fake.pool
    return pool


def unary(fn: Callable[[Any, Any, Call], Any]) -> Callable[..., Any]:
    async def handler(self: Served, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        self.fake.record(fn.__name__, request)
        return await asyncio.get_running_loop().run_in_executor(_pool(self), fn, self, request, Call(context))

    handler.__name__ = fn.__name__
    return handler


def client_stream(fn: Callable[[Any, Iterator[Any], Call], Any]) -> Callable[..., Any]:
    async def handler(self: Served, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        items = [r async for r in requests]
        self.fake.record(fn.__name__, items)
        return await asyncio.get_running_loop().run_in_executor(_pool(self), fn, self, iter(items), Call(context))

    handler.__name__ = fn.__name__
    return handler


_END = object()


def server_stream(fn: Callable[[Any, Any, Call], Iterator[Any]]) -> Callable[..., Any]:
    async def handler(self: Served, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        self.fake.record(fn.__name__, request)
        call = Call(context)
        loop = asyncio.get_running_loop()
        items = fn(self, request, call)
        try:
            while (item := await loop.run_in_executor(_pool(self), next, items, _END)) is not _END:
                yield item
        finally:
            call.end()  # a generator still stepping in the pool sees this and returns
            try:
                items.close()
            except ValueError:  # "generator already executing": it is ending by itself
                pass

    handler.__name__ = fn.__name__
    return handler
