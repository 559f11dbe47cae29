"""The shim's event loop: asyncio's tasks and futures on a small epoll loop.

Each shim is forked from the pre-warmed launcher and shares its pages until it writes one; every
Python object a shim touches (even a reference count raised and dropped again) costs it a copied
4 KiB page. asyncio's stock loop runs a lot of distinct code for each step (BaseEventLoop,
selector_events, unix_events, selectors, transports, streams): measured, it made up about a
third of a shim's private memory. The shim needs little of it, so this loop implements only
what the shim uses:

- call_soon / call_later / call_at / time, create_future / create_task (asyncio's C Task and
  Future, so asyncio.Event, Lock, wait_for, gather, shield and sleep all work unchanged);
- add_reader / add_writer on one epoll fd (level-triggered, like asyncio's selector loop);
- add_signal_handler through signal.set_wakeup_fd (the handler runs as a loop callback);
- sock_accept / sock_recv / sock_sendall / sock_connect for non-blocking sockets.

The same reasoning keeps its hot paths free of helper layers (contextlib, typing.cast, the
signal module's enum wrappers): each distinct function a shim runs costs it pages.
There are no transports, protocols or streams: the shim's own socket server and port relays work
on sockets and callbacks directly. Single-threaded: nothing here is thread-safe, and nothing needs
to be (the shim has no threads).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module behind signal; no stubs
import asyncio
import collections
import heapq
import logging
import os
import select
import signal
import socket
import time
from asyncio import events
from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextvars import Context, copy_context
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple, Unpack

if TYPE_CHECKING:
    from typing_extensions import Buffer

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
log = logging.getLogger("ctrd-shim")

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
_READ_EVENTS = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP
_WRITE_EVENTS = select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP
_MAX_TIMEOUT = 24 * 3600.0


class _Handle(events.Handle):
    """asyncio's Handle for call_soon, readers and signals, with its three methods here: its own
    (asyncio.events) ask the loop for debug mode at each call and are code each shim would copy
    pages of (measured 2026-12-08, 30 shims, three alternating runs: together with a dict built
    from a protobuf map without the Mapping ABC and loop.create_task for asyncio.create_task,
    shim USS 2116 -> 2099 KB)."""

    __slots__ = ()

    def __init__(self, callback: Callable[..., object], args: tuple[Any, ...], loop: ShimLoop,
                 context: Context | None) -> None:
        self._context = context if context is not None else copy_context()
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None

    def cancel(self) -> None:
        if not self._cancelled:
            self._cancelled = True
            self._callback = None  # type: ignore[assignment]  # dropped, as asyncio's cancel drops them
            self._args = None  # type: ignore[assignment]

    def _run(self) -> None:
        try:
            self._context.run(self._callback, *self._args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({"message": f"exception in callback {self._callback!r}",
                                               "exception": exc, "handle": self})


class ShimLoop(asyncio.AbstractEventLoop):
    def __init__(self) -> None:
        self._ready: collections.deque[events.Handle] = collections.deque()
        self._timers: list[events.TimerHandle] = []
        self._cancelled_timers = 0
        self._epoll = select.epoll()
        self._readers: dict[int, events.Handle] = {}
        self._writers: dict[int, events.Handle] = {}
        self._masks: dict[int, int] = {}
        self._signals: dict[int, events.Handle] = {}
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._epoll.register(self._wake_r, _IN)
        self._running = False
        self._stopping = False
        self._closed = False

    # -- running --------------------------------------------------------------------------------

    def run_forever(self) -> None:
        if self._running:
            raise RuntimeError("this event loop is already running")
        self._running = True
        events._set_running_loop(self)
        try:
            while not self._stopping:
                self._run_once()
        finally:
            self._stopping = False
            self._running = False
            events._set_running_loop(None)

    def run_until_complete(self, future: Awaitable[T] | Generator[Any, None, T]) -> T:
        fut: asyncio.Future[T] = asyncio.ensure_future(future, loop=self)  # type: ignore[arg-type]
        fut.add_done_callback(self._stop_cb)
        try:
            self.run_forever()
        finally:
            fut.remove_done_callback(self._stop_cb)
        if not fut.done():
            raise RuntimeError("event loop stopped before the future completed")
        return fut.result()

    def _stop_cb(self, _fut: asyncio.Future[Any]) -> None:
        self._stopping = True

    def stop(self) -> None:
        self._stopping = True

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._running:
            raise RuntimeError("cannot close a running event loop")
        if self._closed:
            return
        self._closed = True
        for sig in list(self._signals):
            self.remove_signal_handler(sig)
        self._ready.clear()
        self._timers.clear()
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    async def shutdown_asyncgens(self) -> None:
        return None

    async def shutdown_default_executor(self) -> None:
        return None

    def _run_once(self) -> None:
        timeout: float | None = None
        if self._ready or self._stopping:
            timeout = 0
        elif self._timers:
            timeout = min(max(0.0, self._timers[0].when() - time.monotonic()), _MAX_TIMEOUT)
        for fd, ev in self._epoll.poll(-1 if timeout is None else timeout):
            if fd == self._wake_r:
                self._read_wakeups()
                continue
            if ev & _READ_EVENTS:
                h = self._readers.get(fd)
                if h is not None:
                    self._ready.append(h)
            if ev & _WRITE_EVENTS:
                h = self._writers.get(fd)
                if h is not None:
                    self._ready.append(h)
        now = time.monotonic()
        timers = self._timers
        while timers and (timers[0]._cancelled or timers[0].when() <= now):
            h = heapq.heappop(timers)
            if not h._cancelled:
                self._ready.append(h)
        for _ in range(len(self._ready)):
            h = self._ready.popleft()
            if not h._cancelled:
                h._run()

    # -- callbacks and timers ---------------------------------------------------------------------

    def call_soon(self, callback: Callable[[Unpack[Ts]], object], *args: *Ts,
                  context: Context | None = None) -> events.Handle:
        h = _Handle(callback, args, self, context)
        self._ready.append(h)
        return h

    def call_soon_threadsafe(self, callback: Callable[[Unpack[Ts]], object], *args: *Ts,
                             context: Context | None = None) -> events.Handle:
        """Single-threaded: there is no other thread to wake us."""
        return self.call_soon(callback, *args, context=context)

    def call_later(self, delay: float, callback: Callable[[Unpack[Ts]], object], *args: *Ts,
                   context: Context | None = None) -> events.TimerHandle:
        return self.call_at(time.monotonic() + delay, callback, *args, context=context)

    def call_at(self, when: float, callback: Callable[[Unpack[Ts]], object], *args: *Ts,
                context: Context | None = None) -> events.TimerHandle:
        h = events.TimerHandle(when, callback, args, self, context)
        heapq.heappush(self._timers, h)
        return h

    def _timer_handle_cancelled(self, handle: events.TimerHandle) -> None:
        """Drop cancelled timers from the heap once they are most of it (a long Stop timeout
        cancelled early would otherwise stay referenced until it was due)."""
        self._cancelled_timers += 1
        if self._cancelled_timers > 100 and self._cancelled_timers * 2 > len(self._timers):
            self._timers = [h for h in self._timers if not h._cancelled]
            heapq.heapify(self._timers)
            self._cancelled_timers = 0

    def time(self) -> float:
        return time.monotonic()

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Coroutine[Any, Any, T] | Generator[Any, None, T], *, name: str | None = None,
                    context: Context | None = None) -> asyncio.Task[T]:
        if context is None:
            return asyncio.Task(coro, loop=self, name=name)
        return asyncio.Task(coro, loop=self, name=name, context=context)

    def get_debug(self) -> bool:
        return False

    def set_debug(self, enabled: bool) -> None:
        pass

    def get_exception_handler(self) -> None:
        return None

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        log.error("%s", context.get("message", "unhandled exception in the event loop"),
                  exc_info=(type(exc), exc, exc.__traceback__) if isinstance(exc, BaseException) else None)

    default_exception_handler = call_exception_handler

    # -- file descriptors -------------------------------------------------------------------------

    def _update(self, fd: int) -> None:
        mask = (_IN if fd in self._readers else 0) | (_OUT if fd in self._writers else 0)
        old = self._masks.get(fd, 0)
        if mask == old:
            return
        if not mask:
            del self._masks[fd]
            try:
                self._epoll.unregister(fd)
            except OSError:  # already closed: the kernel dropped it
                pass
            return
        self._masks[fd] = mask
        if old:
            try:
                self._epoll.modify(fd, mask)
            except FileNotFoundError:  # closed while watched, the number reused: a new file
                self._epoll.register(fd, mask)
        else:
            try:
                self._epoll.register(fd, mask)
            except FileExistsError:
                self._epoll.modify(fd, mask)

    def _watch(self, table: dict[int, events.Handle], fd: Any, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        fd = _fileno(fd)
        table[fd] = _Handle(callback, args, self, None)
        self._update(fd)

    def _unwatch(self, table: dict[int, events.Handle], fd: Any) -> bool:
        fd = _fileno(fd)
        h = table.pop(fd, None)
        if h is None:
            return False
        h.cancel()
        self._update(fd)
        return True

    def add_reader(self, fd: Any, callback: Callable[[Unpack[Ts]], Any], *args: *Ts) -> None:
        self._watch(self._readers, fd, callback, args)

    def remove_reader(self, fd: Any) -> bool:
        return self._unwatch(self._readers, fd)

    def add_writer(self, fd: Any, callback: Callable[[Unpack[Ts]], Any], *args: *Ts) -> None:
        self._watch(self._writers, fd, callback, args)

    def remove_writer(self, fd: Any) -> bool:
        return self._unwatch(self._writers, fd)

    # -- signals ----------------------------------------------------------------------------------

    def add_signal_handler(self, sig: int, callback: Callable[[Unpack[Ts]], object], *args: *Ts) -> None:
        if not self._signals:
            signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self._signals[sig] = _Handle(callback, args, self, None)
        _signal.signal(sig, _note_signal)  # not signal.signal: its enum conversions are code each shim would run
        signal.siginterrupt(sig, False)

    def remove_signal_handler(self, sig: int) -> bool:
        if self._signals.pop(sig, None) is None:
            return False
        _signal.signal(sig, _signal.SIG_DFL)
        if not self._signals:
            try:
                signal.set_wakeup_fd(-1)
            except (ValueError, OSError):
                pass
        return True

    def _read_wakeups(self) -> None:
        while True:
            try:
                data = os.read(self._wake_r, 4096)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for signum in data:
                h = self._signals.get(signum)
                if h is not None and not h._cancelled:
                    self._ready.append(h)

    # -- sockets ----------------------------------------------------------------------------------

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        while True:
            try:
                return sock.accept()
            except (BlockingIOError, InterruptedError):
                await self._wait_fd(sock.fileno(), readable=True)

    async def sock_recv(self, sock: socket.socket, nbytes: int) -> bytes:
        while True:
            try:
                return sock.recv(nbytes)
            except (BlockingIOError, InterruptedError):
                await self._wait_fd(sock.fileno(), readable=True)

    async def sock_sendall(self, sock: socket.socket, data: Buffer) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view):]
            except (BlockingIOError, InterruptedError):
                await self._wait_fd(sock.fileno(), readable=False)

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass
        await self._wait_fd(sock.fileno(), readable=False)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, f"connect {address}: {os.strerror(err)}")

    async def _wait_fd(self, fd: int, *, readable: bool) -> None:
        fut = self.create_future()
        if readable:
            self.add_reader(fd, _wake, fut)
        else:
            self.add_writer(fd, _wake, fut)
        try:
            await fut
        finally:
            if readable:
                self.remove_reader(fd)
            else:
                self.remove_writer(fd)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _note_signal(signum: int, frame: object) -> None:
    """The Python-level handler: the wakeup fd carries the signal to the loop."""


def _fileno(fd: Any) -> int:
    if isinstance(fd, int):
        return fd
    return int(fd.fileno())


def new_loop() -> ShimLoop:
    """A new ShimLoop. (typeshed declares the stock loop's whole API abstract; what the shim does
    not use, ShimLoop leaves raising NotImplementedError, as asyncio.AbstractEventLoop does.)"""
    return ShimLoop()  # type: ignore[abstract]
