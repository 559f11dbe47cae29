"""A grpc.aio server for ctrctl.h2grpc's tests, run as its own process (`python -m ...h2grpc_server
SOCKET`) so a test can kill -9 it mid-call. Service `test.Echo`, raw bytes in and out:

    Unary         echoes; b"fail:<code>:<reason>:<message>" aborts with that status and a
                  `ctrd-reason` trailer; b"sleep" sleeps 30 s (deadlines); b"big:<n>" answers n bytes
    Count         (server-streaming) b"<n>" -> n messages b"0".."n-1"; b"forever" -> one a 10 ms, no end
    Sum           (client-streaming) -> the total length of the requests, as decimal bytes
    Chat          (bidi) echoes each request as it arrives; b"fail" aborts with INVALID_ARGUMENT
    Once          (server-streaming) sends b"first", then waits for ever (the test kills the server)

It prints "ready" on stdout once listening.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio

Ctx = grpc.aio.ServicerContext  # type: ignore[type-arg]


async def unary(request: bytes, context: Any) -> bytes:
    if request.startswith(b"fail:"):
        _, code, reason, message = request.decode().split(":", 3)
        if reason:
            context.set_trailing_metadata((("ctrd-reason", reason),))
        await context.abort(grpc.StatusCode[code], message)
    if request == b"sleep":
        await asyncio.sleep(30)
    if request.startswith(b"big:"):
        return b"x" * int(request[4:])
    return request


async def count(request: bytes, context: Any) -> AsyncIterator[bytes]:
    if request == b"forever":
        i = 0
        while True:
            yield str(i).encode()
            i += 1
            await asyncio.sleep(0.01)
    for i in range(int(request)):
        yield str(i).encode()


async def total(requests: AsyncIterator[bytes], context: Any) -> bytes:
    n = 0
    async for r in requests:
        n += len(r)
    return str(n).encode()


async def chat(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    async for r in requests:
        if r == b"fail":
            context.set_trailing_metadata((("ctrd-reason", "bad-chat"),))
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "chat: bad message")
        yield r


async def once(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"first"
    await asyncio.Event().wait()


async def main(path: str) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20),
                                      ("grpc.max_send_message_length", 64 << 20)])
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Sum": grpc.stream_unary_rpc_method_handler(total),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Once": grpc.unary_stream_rpc_method_handler(once),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", handlers),))
    server.add_insecure_port("unix://" + path)
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
