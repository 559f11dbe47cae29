"""Signals for `ctrd-runtime` (every verb an engine calls), from CPython's `_signal` without `signal`.

`signal` is `_signal` re-exported with its numbers and handlers turned into IntEnums, so importing
it imports enum (with functools, collections, types, operator); `socket` does the same for its
constants (runtime.sync says what it uses instead). Every `ctrd-runtime create|run|exec` (one per
container from containerd and dockerd) loaded both for a handful of calls. Measured here
(hyperfine, 2026-12-06): `python3 -S -c 'import socket,signal,ctypes,select,termios,resource,pwd,
fcntl'` 19.3 ms, the same with `_socket,_signal` 11.7 ms. These are the same C functions `signal`
calls, given plain ints; typeshed has no stub for `_signal`, so this module types the few it uses.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

SIGKILL: int = _signal.SIGKILL
SIGSTOP: int = _signal.SIGSTOP
SIGCHLD: int = _signal.SIGCHLD
# what `ctrd-runtime run|exec` forwards to the process it waits for
FORWARDED: tuple[int, ...] = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1,
                              _signal.SIGUSR2, _signal.SIGWINCH)


def reset_all() -> None:
    """Every catchable signal back to its default action and none blocked (what a new program
    must start with); no wakeup fd."""
    try:
        _signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    for sig in _signal.valid_signals():
        if sig in (SIGKILL, SIGSTOP):
            continue
        try:
            if _signal.getsignal(sig) != _signal.SIG_DFL:
                _signal.signal(sig, _signal.SIG_DFL)
        except (OSError, ValueError, TypeError):
            pass
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def handle(sig: int, handler: Callable[[int, Any], None]) -> None:
    _signal.signal(sig, handler)
