"""Restart policies and docker's backoff (100 ms doubling to 1 min, reset after 10 s up)."""

from __future__ import annotations

from daemon.containers.record import RestartPolicy
from daemon.containers.restart import Backoff, should_restart


def test_backoff_doubles_and_caps_and_resets() -> None:
    b = Backoff()
    delays = [b.next(uptime=0.5) for _ in range(12)]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[-1] == 60.0 and max(delays) == 60.0
    assert b.next(uptime=10.0) == 0.1  # it stayed up long enough: start over
    assert b.next(uptime=1.0) == 0.2


def test_policies() -> None:
    no, always = RestartPolicy("no"), RestartPolicy("always")
    unless, onf, onf2 = RestartPolicy("unless-stopped"), RestartPolicy("on-failure"), RestartPolicy("on-failure", 2)
    assert not should_restart(no, 1, 0, False)
    assert should_restart(always, 0, 100, False)
    assert not should_restart(always, 0, 0, True)  # an explicit stop is never undone
    assert should_restart(unless, 0, 0, False) and not should_restart(unless, 0, 0, True)
    assert not should_restart(onf, 0, 0, False) and should_restart(onf, 1, 50, False)
    assert should_restart(onf2, 1, 1, False) and not should_restart(onf2, 1, 2, False)
    assert not should_restart(always, 1, 0, False, daemon_shutdown=True)
