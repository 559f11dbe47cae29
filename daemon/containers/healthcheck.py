"""docker's healthcheck records: the config (`Config.Healthcheck`) and the state (`State.Health`),
their JSON as docker writes them, and how a run's flags merge with the image's HEALTHCHECK.

The probes run in the shim (see shimd/health.py for the rules and why); the daemon keeps the
last state it read from the shim, so inspect and ps need no shim call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ctrd.errdefs import InvalidArgument
from ctrd.v1 import container_pb2
from daemon.health import HEALTHY, NONE, STARTING, STATUSES, UNHEALTHY, Healthcheck, HealthState, Probe

MIN_DURATION = 1_000_000  # docker: each duration is 0 or at least 1 ms
__all__ = ["HEALTHY", "NONE", "STARTING", "STATUSES", "UNHEALTHY", "HealthState", "Healthcheck", "Probe", "event",
           "merge", "suffix"]


def _duration(value: int, field: str) -> int:
    if value < 0 or 0 < value < MIN_DURATION:
        raise InvalidArgument(f"healthcheck.{field}: must be 0 or at least 1ms")
    return value


def merge(spec: container_pb2.ContainerSpec, image: Mapping[str, Any] | None) -> Healthcheck | None:
    """docker's merge: the run's values where given, the image's HEALTHCHECK for the rest;
    --no-healthcheck (or a test of ["NONE"]) disables it, recorded as docker does."""
    img = Healthcheck.from_json(image)
    if spec.no_healthcheck:
        if spec.HasField("healthcheck") and list(spec.healthcheck.test) and list(spec.healthcheck.test) != ["NONE"]:
            raise InvalidArgument("healthcheck: --no-healthcheck conflicts with --health-* options")
        return Healthcheck(("NONE",))
    if not spec.HasField("healthcheck"):
        return img
    h = spec.healthcheck
    test = tuple(h.test)
    if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        raise InvalidArgument(f"healthcheck.test: unknown type {test[0]!r} (CMD, CMD-SHELL or NONE)")
    if test and test[0] in ("CMD", "CMD-SHELL") and (len(test) < 2 or not test[1]):
        raise InvalidArgument("healthcheck.test: a command is required")
    if h.retries < 0:
        raise InvalidArgument("healthcheck.retries: must not be negative")
    base = img or Healthcheck(())
    merged = Healthcheck(
        test or base.test,
        _duration(h.interval, "interval") or base.interval,
        _duration(h.timeout, "timeout") or base.timeout,
        h.retries or base.retries,
        _duration(h.start_period, "start_period") or base.start_period,
        _duration(h.start_interval, "start_interval") or base.start_interval,
    )
    if not merged.test:
        raise InvalidArgument("healthcheck.test: health options need a command (--health-cmd) or an image HEALTHCHECK")
    return merged


def event(old: HealthState | None, new: HealthState) -> str | None:
    """The `health_status: ...` event a change from `old` to `new` makes (docker: on every
    status change to healthy or unhealthy), None when there is nothing to report."""
    if new.status not in (HEALTHY, UNHEALTHY):
        return None
    if old is not None and old.status == new.status:
        return None
    return f"health_status: {new.status}"


def suffix(state: HealthState | None) -> str:
    """What ps adds to "Up 3 minutes"."""
    if state is None:
        return ""
    if state.status == STARTING:
        return " (health: starting)"
    return f" ({state.status})"
