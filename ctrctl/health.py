"""--health-* and --no-healthcheck -> ContainerSpec.healthcheck, checked as docker's CLI does."""

from __future__ import annotations

import argparse
from typing import Any

from ctrctl.errors import UsageError, flag_error
from ctrctl.format import parse_go_duration

DURATIONS = (("interval", "--health-interval"), ("timeout", "--health-timeout"),
             ("start_period", "--health-start-period"), ("start_interval", "--health-start-interval"))


def duration_ns(value: str, flag: str) -> int:
    """A Go duration ("30s", "1m30s", "500ms", "0") in nanoseconds; 0 or at least 1 ms."""
    seconds = 0.0 if value == "0" else parse_go_duration(value)
    if seconds is None:
        raise flag_error(flag, value, "expected a duration such as 30s, 1m30s or 500ms")
    ns = round(seconds * 1e9)
    if 0 < ns < 1_000_000:
        raise flag_error(flag, value, "must be 0 or at least 1ms")
    return ns


def apply(spec: Any, args: argparse.Namespace) -> None:
    """Fill spec.healthcheck / spec.no_healthcheck from the parsed flags."""
    given = args.health_cmd is not None or args.health_retries is not None or any(
        getattr(args, f"health_{name}") is not None for name, _ in DURATIONS)
    if args.no_healthcheck:
        if given:
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        spec.no_healthcheck = True
        return
    if not given:
        return
    h = spec.healthcheck
    h.SetInParent()
    if args.health_cmd is not None:
        if not args.health_cmd.strip():
            raise flag_error("--health-cmd", args.health_cmd, "the command must not be empty")
        h.test.extend(["CMD-SHELL", args.health_cmd])
    for name, flag in DURATIONS:
        raw = getattr(args, f"health_{name}")
        if raw is not None:
            setattr(h, name, duration_ns(raw, flag))
    if args.health_retries is not None:
        try:
            retries = int(args.health_retries)
        except ValueError:
            raise flag_error("--health-retries", args.health_retries, "expected an integer") from None
        if retries < 0:
            raise flag_error("--health-retries", args.health_retries, "must not be negative")
        h.retries = retries
