"""The asyncio internals shimd/loop.py relies on, checked by name and shape.

ShimLoop drives asyncio's own Handle, TimerHandle, Task and Future on its epoll loop instead of
subclassing BaseEventLoop, so it leans on private names that CPython may change in any minor
release. pyproject's requires-python pins the versions tested; this file fails first, with the
name that moved, on a Python whose internals differ.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]
import asyncio
import contextvars
import heapq
import inspect
import os
import signal
from asyncio import events
from typing import Any

from shimd.loop import _Handle, new_loop


def _params(fn: Any) -> list[str]:
    return list(inspect.signature(fn).parameters)


class _Loop:
    """What a Handle asks of its loop: debug mode (asyncio's) and the exception handler."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors

    def get_debug(self) -> bool:
        return False

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        self.errors.append(context)


def _inner_context() -> tuple[contextvars.ContextVar[str], contextvars.Context]:
    """A context variable and a copied context in which it reads "inner" (outside: "outer")."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("v", default="outer")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inner")
    return var, ctx


def test_handle_constructors_take_callback_args_loop_context() -> None:
    assert _params(events.Handle.__init__) == ["self", "callback", "args", "loop", "context"]
    assert _params(events.TimerHandle.__init__) == ["self", "when", "callback", "args", "loop", "context"]


def test_handle_keeps_cancelled_flag_and_runs_in_its_context() -> None:
    """ShimLoop reads h._cancelled and calls h._run(): _run runs the callback with its args in
    the handle's context, and hands an exception to loop.call_exception_handler."""
    assert "_cancelled" in events.Handle.__slots__
    var, ctx = _inner_context()
    seen: list[tuple[str, str]] = []
    errors: list[dict[str, Any]] = []
    lp: Any = _Loop(errors)
    h = events.Handle(lambda a: seen.append((a, var.get())), ("x",), lp, ctx)
    assert h._cancelled is False
    h._run()
    assert seen == [("x", "inner")]
    h.cancel()
    assert h._cancelled is True

    def boom() -> None:
        raise ValueError("boom")

    events.Handle(boom, (), lp, None)._run()
    assert isinstance(errors[0]["exception"], ValueError)


def test_shimloop_handle_fills_asyncio_handle_slots_and_runs_the_same_way() -> None:
    """shimd.loop._Handle sets asyncio's Handle slots itself (no get_debug per call): every name
    it writes is one of Handle's slots, and it runs, cancels and reports errors as Handle does."""
    assert {"_context", "_loop", "_callback", "_args", "_cancelled", "_repr", "_source_traceback"} <= set(
        events.Handle.__slots__)
    assert _Handle.__slots__ == ()  # no instance dict: an attribute Handle lacks would raise
    var, ctx = _inner_context()
    seen: list[tuple[str, str]] = []
    errors: list[dict[str, Any]] = []
    lp: Any = _Loop(errors)
    h = _Handle(lambda a: seen.append((a, var.get())), ("x",), lp, ctx)
    assert isinstance(h, events.Handle) and "lambda" in repr(h)
    h._run()
    assert seen == [("x", "inner")]
    h.cancel()
    assert h._cancelled is True and h._callback is None and h._args is None
    assert "cancelled" in repr(h)

    def boom() -> None:
        raise ValueError("boom")

    failing = _Handle(boom, (), lp, None)
    failing._run()
    assert isinstance(errors[0]["exception"], ValueError) and errors[0]["handle"] is failing
    assert "boom" in errors[0]["message"]


def test_timer_handle_orders_by_when_and_reports_its_cancel_to_the_loop() -> None:
    """ShimLoop keeps TimerHandles in a heapq (ordered by when()) and counts cancelled ones
    through loop._timer_handle_cancelled(handle), which TimerHandle.cancel calls."""
    cancelled: list[events.TimerHandle] = []

    class _Loop:
        def get_debug(self) -> bool:
            return False

        def _timer_handle_cancelled(self, handle: events.TimerHandle) -> None:
            cancelled.append(handle)

    lp: Any = _Loop()
    late = events.TimerHandle(2.0, print, (), lp, None)
    early = events.TimerHandle(1.0, print, (), lp, None)
    heap: list[events.TimerHandle] = []
    heapq.heappush(heap, late)
    heapq.heappush(heap, early)
    assert heap[0] is early and early.when() == 1.0
    late.cancel()
    assert cancelled == [late] and late._cancelled


def test_set_running_loop_is_what_get_running_loop_reads() -> None:
    loop = new_loop()
    try:
        events._set_running_loop(loop)
        try:
            assert asyncio.get_running_loop() is loop
        finally:
            events._set_running_loop(None)
    finally:
        loop.close()


def test_task_and_future_accept_the_arguments_shimloop_passes() -> None:
    loop = new_loop()
    try:
        async def answer() -> int:
            return 42

        ctx = contextvars.copy_context()
        task = asyncio.Task(answer(), loop=loop, name="t", context=ctx)
        fut: asyncio.Future[int] = asyncio.Future(loop=loop)
        fut.set_result(1)
        assert loop.run_until_complete(task) == 42
        assert task.get_name() == "t" and fut.get_loop() is loop
    finally:
        loop.close()


def test_signal_c_module_and_wakeup_fd_options() -> None:
    """ShimLoop installs handlers through the C module _signal (no enum wrapping) and carries
    signals to the loop with signal.set_wakeup_fd(fd, warn_on_full_buffer=False)."""
    assert callable(_signal.signal) and _signal.SIG_DFL == signal.SIG_DFL
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        assert signal.set_wakeup_fd(old) == w
    finally:
        os.close(r)
        os.close(w)
