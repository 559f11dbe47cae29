"""Attached clients: the container's output fanned out to every client, their input to the
container's stdin, on the shim's attach socket (`<state-dir>/io.sock`, beside shim.sock; the
frames are `ctrd.shim.attachwire`).

The log never waits for a client: the pumps write the json-file log first, then hand the same
bytes to `Fanout.publish`, which queues them per client without blocking. A client whose queue
is beyond CLIENT_BUFFER and that has taken nothing for STALL_GRACE (it stopped reading), or whose
queue reaches CLIENT_BUFFER_MAX, is cut off; the container, its log and the other clients go on.
A slow but live client (descheduled for a moment on a busy machine) is not. Input goes the other way with back-pressure instead: while the container's stdin
is full, the shim stops reading from clients (their kernel buffers fill, their writes block).

The socket belongs to the shim, not the daemon: attached clients (the daemon's Attach streams)
reconnect after a daemon restart and find the container where it was.
"""

from __future__ import annotations

import _socket  # the C sockets: socket.py's wrappers (enum conversions on accept) are code each shim would run
import asyncio
import logging
import os
import socket
import struct
import time
from collections.abc import Callable

from ctrd.shim.attachwire import EXIT, RESIZE, STDERR, STDIN, STDIN_EOF, STDOUT, frame, take_frames

log = logging.getLogger("ctrd-shim")

CLIENT_BUFFER = 4 * 1024 * 1024  # queued output per client beyond which it must keep draining...
STALL_GRACE = 1.0  # ...or be cut off after this long without taking a byte
CLIENT_BUFFER_MAX = 32 * 1024 * 1024  # cut off at once: the most a client may cost the shim
STDIN_BUFFER = 256 * 1024  # queued input before the shim stops reading clients
INPUT_HOLD = 256 * 1024  # a client's own unsent output beyond which its input is not read (an echo
# through `cat` goes at the pace the client takes its output, far below the cut-off marks)...
INPUT_RESUME = 128 * 1024  # ...until it is down to this (a small queue: big bytearrays cost page faults)
RECV_SIZE = 64 * 1024


class StdinSink:
    """The shim's write end of the container's stdin (a pipe, or a dup of the pty master)."""

    def __init__(self, fd: int, on_room: Callable[[], None]) -> None:
        self.fd = fd
        self.pending = bytearray()
        self.closing = False
        self._on_room = on_room
        self._loop = asyncio.get_running_loop()
        os.set_blocking(fd, False)

    @property
    def full(self) -> bool:
        return len(self.pending) >= STDIN_BUFFER

    def write(self, data: bytes) -> None:
        if self.fd < 0 or self.closing:
            return
        if not self.pending:
            try:
                n = os.write(self.fd, data)
            except BlockingIOError:
                n = 0
            except OSError:  # the reader is gone (the process exited or closed its stdin)
                self._close_now()
                return
            data = data[n:]
            if not data:
                return
            self._loop.add_writer(self.fd, self._on_writable)
        self.pending += data

    def _on_writable(self) -> None:
        try:
            n = os.write(self.fd, self.pending)
        except BlockingIOError:
            return
        except OSError:
            self._close_now()
            return
        del self.pending[:n]
        if not self.pending:
            self._loop.remove_writer(self.fd)
            if self.closing:
                self._close_now()
        if not self.full:
            self._on_room()

    def close(self) -> None:
        """EOF for the container once what is queued went in."""
        self.closing = True
        if not self.pending:
            self._close_now()

    def _close_now(self) -> None:
        if self.fd >= 0:
            self._loop.remove_writer(self.fd)
            os.close(self.fd)
            self.fd = -1
        self.pending.clear()
        self._on_room()


class Client:
    """One attached connection, on its bare fd (as shimd.server: no socket objects)."""

    def __init__(self, hub: Fanout, fd: int) -> None:
        self.hub = hub
        self.fd = fd
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.closed = False
        self.reading = False
        self.stdin_done = False
        self.progress = 0.0  # when it last took bytes (or its backlog began)
        self.resume()

    def resume(self) -> None:
        if not self.reading and not self.closed and len(self.outbuf) <= INPUT_RESUME:
            self.hub.loop.add_reader(self.fd, self._on_readable)
            self.reading = True

    def pause(self) -> None:
        if self.reading:
            self.hub.loop.remove_reader(self.fd)
            self.reading = False

    def _on_readable(self) -> None:
        try:
            data = os.read(self.fd, RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.inbuf += data
        try:
            frames = take_frames(self.inbuf)
        except ValueError as exc:
            log.warning("attach: %s", exc)
            self.close()
            return
        for kind, payload in frames:
            self.hub.on_frame(self, kind, payload)

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if not self.outbuf:
            try:
                n = os.write(self.fd, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self.close()
                return
            data = data[n:]
            if not data:
                return
            self.hub.loop.add_writer(self.fd, self._on_writable)
            self.progress = time.monotonic()
        queued = len(self.outbuf) + len(data)
        if self.hub.lossless:
            pass  # an exec's output waits for its clients instead (Fanout.set_flow)
        elif queued > CLIENT_BUFFER_MAX or (queued > CLIENT_BUFFER and time.monotonic() - self.progress > STALL_GRACE):
            log.warning("attach: a client stopped reading %d bytes behind: cut off", len(self.outbuf))
            self.close()
            return
        self.outbuf += data
        if len(self.outbuf) > INPUT_HOLD:
            self.pause()

    def _on_writable(self) -> None:
        try:
            n = os.write(self.fd, self.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        del self.outbuf[:n]
        self.progress = time.monotonic()
        if not self.reading and len(self.outbuf) <= INPUT_RESUME and not (self.hub.stdin is not None and self.hub.stdin.full):
            self.resume()
        if self.hub.paused and len(self.outbuf) <= CLIENT_BUFFER:
            self.hub.maybe_resume()
        if not self.outbuf:
            self.hub.loop.remove_writer(self.fd)
            if self.hub.exit_frame is not None:
                self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.pause()
        self.hub.loop.remove_writer(self.fd)
        os.close(self.fd)
        self.outbuf.clear()
        self.hub.gone(self)


class Fanout:
    """Every attached client of one process, its stdin and its terminal."""

    def __init__(self, stdin_fd: int = -1, stdin_once: bool = False,
                 resize: Callable[[int, int], None] | None = None, lossless: bool = False) -> None:
        """`lossless` (an exec: no log to protect): a client that falls behind is never cut off;
        the output's source is paused instead (`set_flow`), so the process waits, as docker's exec."""
        self.loop = asyncio.get_running_loop()
        self.lossless = lossless
        self.paused = False
        self._pause: Callable[[], None] | None = None
        self._resume: Callable[[], None] | None = None
        self.clients: set[Client] = set()
        self.stdin = StdinSink(stdin_fd, self._resume_all) if stdin_fd >= 0 else None
        self.stdin_once = stdin_once
        self.exit_frame: bytes | None = None
        self._resize = resize
        self._sock: _socket.socket | None = None
        self._listener = -1

    def set_stdin(self, fd: int) -> None:
        """The container's stdin, when it exists only after create (the pty master's dup)."""
        self.stdin = StdinSink(fd, self._resume_all)

    def listen(self, path: str) -> None:
        sock = _socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            sock.bind(path)
            os.chmod(path, 0o600)
            sock.listen(16)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._listener = sock.fileno()
        self.loop.add_reader(self._listener, self._on_accept)

    def _on_accept(self) -> None:
        assert self._sock is not None
        for _ in range(16):
            try:
                fd, _ = self._sock._accept()  # type: ignore[attr-defined]  # the C accept: a bare CLOEXEC fd
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: try again on the next wake-up
                log.warning("attach accept: %s", exc)
                return
            self.add(fd)

    def add(self, fd: int) -> Client:
        """Serve one connected socket fd (owned from now on)."""
        os.set_blocking(fd, False)
        c = Client(self, fd)
        self.clients.add(c)
        if self.stdin is not None and self.stdin.full:
            c.pause()  # input waits for room, as every other client's does
        if self.exit_frame is not None:
            c.send(self.exit_frame)
            if not c.outbuf:
                c.close()
        return c

    def set_flow(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        """How a lossless fan-out stops and restarts reading its output (the pumps)."""
        self._pause, self._resume = pause, resume

    def publish(self, stream: str, data: bytes) -> None:
        if not self.clients:
            return
        out = frame(STDERR if stream == "stderr" else STDOUT, data)
        for c in list(self.clients):
            c.send(out)
        if self.lossless and not self.paused and self._pause is not None and any(
                len(c.outbuf) > CLIENT_BUFFER for c in self.clients):
            self.paused = True
            self._pause()

    def maybe_resume(self) -> None:
        if self.paused and all(len(c.outbuf) <= CLIENT_BUFFER for c in self.clients):
            self.paused = False
            if self._resume is not None:
                self._resume()

    def on_frame(self, c: Client, kind: int, payload: bytes) -> None:
        if kind == STDIN and self.stdin is not None and not c.stdin_done:
            self.stdin.write(payload)
            if self.stdin.full:
                for other in self.clients:
                    other.pause()
        elif kind == STDIN_EOF:
            self._stdin_ended(c)
        elif kind == RESIZE and len(payload) == 4 and self._resize is not None:
            rows, cols = struct.unpack(">HH", payload)
            try:
                self._resize(rows, cols)
            except Exception as exc:  # a bad size from one client: ignored, said once
                log.warning("attach resize: %s", exc)

    def _stdin_ended(self, c: Client) -> None:
        if c.stdin_done:
            return
        c.stdin_done = True
        if self.stdin_once and self.stdin is not None:
            self.stdin.close()

    def _resume_all(self) -> None:
        for c in self.clients:
            c.resume()

    def gone(self, c: Client) -> None:
        self.clients.discard(c)
        self.maybe_resume()
        # A client that disconnects without saying EOF (detach, a dead daemon) ends nothing: only
        # an explicit end of its stdin does, as docker (a detached -it container keeps its shell).

    def finish(self, status: int) -> None:
        """The process exited and its output is drained: EXIT to every client, then they close."""
        self.exit_frame = frame(EXIT, struct.pack(">I", status & 0xFFFFFFFF))
        for c in list(self.clients):
            c.send(self.exit_frame)
            if not c.outbuf:
                c.close()
        if self.stdin is not None:
            self.stdin.close()

    def close(self, path: str = "", drain: bool = False) -> None:
        """Stop listening and close every client; with `drain`, after the exit, a client still
        taking its queued output (and the exit frame) keeps its connection until it has it all."""
        if self._listener >= 0:
            self.loop.remove_reader(self._listener)
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            self._listener = -1
            if path:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        for c in list(self.clients):
            if not (drain and self.exit_frame is not None and c.outbuf):
                c.close()
        if self.stdin is not None:
            self.stdin._close_now()
