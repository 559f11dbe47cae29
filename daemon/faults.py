"""Test-only fault injection: `point(name)` kills this process with SIGKILL when asked to.

The fault suite (tests/*/test_fault_*.py) starts a daemon with `CTRD_FAULTS=create.after_layers`
(a comma list) to crash it at one exact step of a lifecycle verb and then proves that the next
start-up recovers. An entry `name@0.3` kills 0.3 s after the point is reached instead (for a step
that is a single await, such as "the stop signal was sent, the exit is not yet reported").

The environment is read once at import: with CTRD_FAULTS unset, `point` is a set lookup on an
empty frozenset. Names are <verb>.<step just passed>:
create.{validated,after_layers,after_record}, start.{after_mount,after_network,after_bundle,
after_shim_launch,after_shim_create,after_record}, stop.{after_signal,after_exit,
after_network_teardown,after_unmount}, rm.{after_layers_removed,after_record_removed}.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

ENV = "CTRD_FAULTS"


def _parse(raw: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, delay = item.partition("@")
        try:
            out[name] = max(0.0, float(delay)) if delay else 0.0
        except ValueError:
            out[name] = 0.0
    return out


_ARMED: dict[str, float] = _parse(os.environ.get(ENV, ""))
_NAMES: frozenset[str] = frozenset(_ARMED)


def _die(name: str) -> None:
    # stderr, not logging: the log handler may hold a lock; the message tells the test which fired
    sys.stderr.write(f"ctrd: fault injected at {name}: SIGKILL\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def point(name: str) -> None:
    """SIGKILL this process at `name` when CTRD_FAULTS lists it; nothing otherwise."""
    if name not in _NAMES:
        return
    delay = _ARMED[name]
    if delay <= 0:
        _die(name)
        return
    logging.getLogger(__name__).warning("fault %s armed: SIGKILL in %.2f s", name, delay)
    timer = threading.Timer(delay, _die, args=(name,))
    timer.daemon = True
    timer.start()


def armed() -> frozenset[str]:
    """The names this process was started with (for logs and tests)."""
    return _NAMES
