"""`run`: drive a coroutine function on the shim's event loop (the `loop` fixture of
tests/unit/conftest.py) with a bound, for the shim's unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shimd.loop import ShimLoop

T = TypeVar("T")


def run(loop: ShimLoop, fn: Callable[[], Awaitable[T]], timeout: float = 20) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(fn(), timeout)

    return loop.run_until_complete(bounded())
