"""Summary statistics of timing samples (pure: no I/O, unit-tested)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks.

    Same definition as numpy's default ("linear"), so figures can be checked with numpy.
    """
    if not samples:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return ordered[lo]
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class Summary:
    """Latency summary in milliseconds."""

    n: int
    p50: float
    p90: float
    mean: float
    min: float
    max: float

    def as_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "p50": self.p50, "p90": self.p90, "mean": self.mean,
                "min": self.min, "max": self.max}


def summarize(samples_ms: Sequence[float]) -> Summary:
    if not samples_ms:
        raise ValueError("summary of an empty sample")
    return Summary(
        n=len(samples_ms),
        p50=percentile(samples_ms, 50),
        p90=percentile(samples_ms, 90),
        mean=sum(samples_ms) / len(samples_ms),
        min=min(samples_ms),
        max=max(samples_ms),
    )


def ratio(ours: float, theirs: float) -> float | None:
    """ours / theirs, or None when the peer figure is zero (no meaningful ratio)."""
    if theirs == 0:
        return None
    return ours / theirs


Steps = dict[str, list[float]]


def lap(steps: Steps | None, name: str, since: float) -> float:
    """Record the ms since `since` under name (when steps is given); returns now for the next lap."""
    now = time.perf_counter()
    if steps is not None:
        steps.setdefault(name, []).append((now - since) * 1000.0)
    return now


class RunRmClient(Protocol):
    def create(self, image: str, cmd: list[str], network: str) -> str: ...
    def start(self, cid: str) -> Any: ...
    def wait(self, cid: str) -> int: ...
    def remove(self, cid: str, force: bool = ...) -> Any: ...


def run_rm(client: RunRmClient, image: str, cmd: list[str], network: str, steps: Steps | None = None) -> int:
    """run → exit → removed, the way `docker run --rm` does it, as four API calls (each timed into
    steps when given, to show where the time goes)."""
    t = time.perf_counter()
    cid = client.create(image, cmd, network)
    t = lap(steps, "create", t)
    client.start(cid)
    t = lap(steps, "start", t)
    code = client.wait(cid)
    t = lap(steps, "wait", t)
    client.remove(cid)
    lap(steps, "remove", t)
    return code


def step_p50s(steps: Steps) -> dict[str, float]:
    return {name: round(percentile(values, 50), 3) for name, values in steps.items() if values}
