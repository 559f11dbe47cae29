"""One interactive session: drives one ctrd Attach stream with the sync client.

    result = run_session(stub_attach, open_msg, on_started=..., proxy=..., stdin_fd=0)

- the requests: AttachOpen first, then what a reader thread takes from stdin (stdin bytes; at
  its end stdin_eof, and the request side is closed), resize requests on SIGWINCH;
- the main thread reads the responses: `started` (then, with a tty and stdin, the local terminal
  goes raw and its size is sent; `on_started` runs — `run` starts the container here, so nothing
  the process prints is missed), output to stdout/stderr, and the end: `exit` (the code) or
  `detached` (detach keys or `detach`).
- without a tty, SIGINT/SIGTERM are handed to `proxy` (docker's --sig-proxy: `run` and `attach`
  send them to the container with Kill) from a helper thread, never from the signal handler.

The stub is used only in grpc's sync call shape (`Attach(request_iterator)` → response iterator,
with `.cancel()`), which the h2-based channel keeps. A daemon that dies mid-session ends the
response iterator with an RpcError; the terminal is restored on the way out (ctrctl.tty).
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, NamedTuple

from ctrctl.tty import RawMode, is_terminal, size
from ctrd.v1 import container_pb2 as pb

_READ = 256 * 1024
_END = None


class Result(NamedTuple):  # not a dataclass: start-up time (ctrctl/parser.py's _Subs)
    exit_code: int | None  # None when detached
    detached: bool = False


class StreamEnded(Exception):
    """The daemon ended the stream without an exit or a detach."""


class _Requests:
    """The request side of the stream: a queue drained by grpc's sending thread."""

    def __init__(self, first: pb.AttachRequest) -> None:
        self.q: queue.SimpleQueue[pb.AttachRequest | None] = queue.SimpleQueue()
        self.q.put(first)
        self.closed = False

    def put(self, req: pb.AttachRequest) -> None:
        if not self.closed:
            self.q.put(req)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.q.put(_END)

    def __iter__(self) -> Iterator[pb.AttachRequest]:
        while True:
            req = self.q.get()
            if req is None:
                return
            yield req


def _read_stdin(fd: int, reqs: _Requests) -> None:
    while True:
        try:
            data = os.read(fd, _READ)
        except InterruptedError:
            continue
        except OSError:
            data = b""
        if not data:
            reqs.put(pb.AttachRequest(stdin_eof=True))
            reqs.close()
            return
        reqs.put(pb.AttachRequest(stdin=data))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class _SignalProxy:
    def __init__(self, proxy: Callable[[signal.Signals], None]) -> None:
        self.proxy = proxy
        self.q: queue.SimpleQueue[signal.Signals | None] = queue.SimpleQueue()
        self.saved: dict[int, Any] = {}
        self.thread = threading.Thread(target=self._forward, name="ctrctl-sigproxy", daemon=True)

    def __enter__(self) -> _SignalProxy:
        self.thread.start()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.q.put(signal.Signals(signum))

    def _forward(self) -> None:
        while (sig := self.q.get()) is not None:
            try:
                self.proxy(sig)
            except Exception:
                pass  # the process is gone: the stream says how it ended

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        self.q.put(None)


def run_session(attach: Any, open_msg: pb.AttachOpen, *, on_started: Callable[[], None] | None = None,
                proxy: Callable[[signal.Signals], None] | None = None, stdin_fd: int = 0,
                stdout_fd: int = 1, stderr_fd: int = 2) -> Result:
    """`attach` is the sync stub method ContainerService.Attach. Raises h2grpc.RpcError as the
    stub does (the caller maps it), StreamEnded, or BrokenPipeError when our output is closed."""
    reqs = _Requests(pb.AttachRequest(open=open_msg))
    call = attach(iter(reqs))
    raw: RawMode | None = None
    proxied: _SignalProxy | None = None
    try:
        for resp in call:
            kind = resp.WhichOneof("msg")
            if kind == "output":
                _write_all(stderr_fd if resp.output.stream == "stderr" else stdout_fd, resp.output.data)
            elif kind == "started":
                tty = resp.started.tty
                if tty and open_msg.stdin and is_terminal(stdin_fd):
                    raw = RawMode(stdin_fd, lambda r, c: reqs.put(
                        pb.AttachRequest(resize=pb.ResizeRequest(rows=r, cols=c))))
                    raw.__enter__()
                if tty:
                    s = size(stdin_fd) or size(stdout_fd)
                    if s is not None:
                        reqs.put(pb.AttachRequest(resize=pb.ResizeRequest(rows=s[0], cols=s[1])))
                if not tty and proxy is not None:
                    proxied = _SignalProxy(proxy).__enter__()
                if on_started is not None:
                    on_started()
                if open_msg.stdin:
                    threading.Thread(target=_read_stdin, args=(stdin_fd, reqs), name="ctrctl-stdin",
                                     daemon=True).start()
                elif not tty:
                    reqs.close()  # a tty's resizes still go through the request side
            elif kind == "exit":
                return Result(resp.exit.exit_code)
            elif kind == "detached":
                return Result(None, detached=True)
        raise StreamEnded("the attach stream ended before the process exited")
    finally:
        if raw is not None:
            raw.restore()
        if proxied is not None:
            proxied.__exit__()
        reqs.close()
        call.cancel()
