"""docker's healthcheck records, shared by the container records and the shim connection: the
config (`Config.Healthcheck`) and the state (`State.Health`), with their JSON as docker writes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ctrd.timefmt import parse_rfc3339, rfc3339_nano

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
STATUSES = (STARTING, HEALTHY, UNHEALTHY, NONE)


@dataclass(frozen=True, slots=True)
class Healthcheck:
    """docker's HealthConfig; durations in ns, 0 = docker's default."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    retries: int = 0
    start_period: int = 0
    start_interval: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.test) and self.test[0] in ("CMD", "CMD-SHELL") and len(self.test) > 1

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Test": list(self.test)}
        for key, value in (("Interval", self.interval), ("Timeout", self.timeout),
                           ("StartPeriod", self.start_period), ("StartInterval", self.start_interval),
                           ("Retries", self.retries)):
            if value:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Healthcheck | None:
        if not d or not d.get("Test"):
            return None
        return cls(tuple(str(t) for t in d["Test"]), int(d.get("Interval") or 0), int(d.get("Timeout") or 0),
                   int(d.get("Retries") or 0), int(d.get("StartPeriod") or 0), int(d.get("StartInterval") or 0))


@dataclass(frozen=True, slots=True)
class Probe:
    start: float
    end: float
    exit_code: int
    output: str

    def to_json(self) -> dict[str, Any]:
        return {"Start": rfc3339_nano(int(self.start * 1e9)), "End": rfc3339_nano(int(self.end * 1e9)),
                "ExitCode": self.exit_code, "Output": self.output}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Probe:
        return cls(parse_rfc3339(d.get("Start", "")), parse_rfc3339(d.get("End", "")), int(d.get("ExitCode", 0)),
                   str(d.get("Output", "")))


@dataclass(frozen=True, slots=True)
class HealthState:
    status: str = STARTING
    failing_streak: int = 0
    log: tuple[Probe, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"Status": self.status, "FailingStreak": self.failing_streak, "Log": [p.to_json() for p in self.log]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> HealthState | None:
        if not d:
            return None
        return cls(str(d.get("Status", STARTING)), int(d.get("FailingStreak", 0)),
                   tuple(Probe.from_json(p) for p in d.get("Log") or ()))
