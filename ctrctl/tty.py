"""The local terminal during an interactive session: raw mode, its size, SIGWINCH.

The stdlib's termios/tty do the job (a terminal library would add a dependency for three calls).
Raw mode is restored on every way out of the `with`: a normal end, an exception (the daemon killed
mid-session ends the stream with an error), and SIGTERM/SIGHUP, which are turned into SystemExit in
the main thread so the `finally` runs (in raw mode ctrl-c is a byte for the container, not SIGINT).
"""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import termios
import tty
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any


def is_terminal(fd: int) -> bool:
    return os.isatty(fd)


def size(fd: int) -> tuple[int, int] | None:
    """(rows, cols) of the terminal on `fd`, or None when it is not one (or reports 0x0)."""
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    if rows == 0 or cols == 0:
        return None
    return rows, cols


def _exit_on(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


class RawMode:
    """`with RawMode(fd, on_resize):` the terminal on `fd` in raw mode (if it is a terminal) and
    `on_resize(rows, cols)` called from the main thread on SIGWINCH."""

    def __init__(self, fd: int, on_resize: Callable[[int, int], None] | None = None) -> None:
        self.fd = fd
        self.on_resize = on_resize
        self._saved: list[Any] | None = None
        self._handlers: dict[int, Any] = {}

    def __enter__(self) -> RawMode:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._handlers[sig] = signal.signal(sig, _exit_on)
        if self.on_resize is not None:
            self._handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, self._winch)
        if is_terminal(self.fd):
            self._saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd, termios.TCSANOW)
        return self

    def _winch(self, signum: int, frame: FrameType | None) -> None:
        s = size(self.fd)
        if s is not None and self.on_resize is not None:
            self.on_resize(*s)

    def restore(self) -> None:
        if self._saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSAFLUSH, self._saved)
            except termios.error:
                pass  # the terminal is gone (hang-up): nothing to restore
            self._saved = None
        for sig, handler in self._handlers.items():
            signal.signal(sig, handler)
        self._handlers.clear()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.restore()
