"""Restart policies (docker's restartmanager): no, always, on-failure[:N], unless-stopped.

Backoff: the first restart waits 100 ms, each next one doubles, capped at one minute; a container
that stayed up for 10 s or more starts again from 100 ms. An explicit stop (or kill) sets
HasBeenManuallyStopped, and the policy never undoes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.containers.record import RestartPolicy

INITIAL_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0


@dataclass(slots=True)
class Backoff:
    delay: float = 0.0

    def next(self, uptime: float) -> float:
        if uptime >= RESET_AFTER:
            self.delay = 0.0
        self.delay = INITIAL_DELAY if self.delay == 0.0 else min(self.delay * 2, MAX_DELAY)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


def should_restart(
    policy: RestartPolicy, exit_code: int, restart_count: int, manually_stopped: bool, daemon_shutdown: bool = False
) -> bool:
    if manually_stopped or daemon_shutdown:
        return False
    if policy.name in ("always", "unless-stopped"):
        return True
    if policy.name == "on-failure":
        if exit_code == 0:
            return False
        return policy.maximum_retry_count == 0 or restart_count < policy.maximum_retry_count
    return False
