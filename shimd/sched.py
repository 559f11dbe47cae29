"""The scheduling policy of work done ahead of need (a leaf: imports no shimd code).

The launcher forks the next container's shim as soon as it has answered a launch, and that shim
then forks its create helper, which parses a representative config (runtime.container.prefault).
Run at the normal policy, that work competes for the CPU with the start it follows, on a
2-core machine its busiest phase: so it runs under SCHED_IDLE (only on a CPU nothing else
wants), and each process goes back to the launcher's own policy when its container arrives:
the launcher moves the idle shim before it writes the request, the shim moves its spare helper
when it takes its id, and the helper moves itself when it is handed its container, before it
forks the init (the container's process inherits the policy it is forked with).
"""

from __future__ import annotations

import contextlib
import os

# The policy and priority to come back to: the launcher's own, read when it first goes into
# the background (a daemon started under SCHED_BATCH gives its shims SCHED_BATCH, as before).
_normal: tuple[int, int] | None = None


def background() -> None:
    """This process under SCHED_IDLE (its children forked from now on too), its policy kept."""
    global _normal
    if _normal is None:
        _normal = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def foreground(pid: int = 0) -> None:
    """`pid` (0: this process) back under the policy background() kept; nothing if none was kept
    or the process is gone."""
    if _normal is None:
        return
    with contextlib.suppress(OSError):
        os.sched_setscheduler(pid, _normal[0], os.sched_param(_normal[1]))
