"""The container's healthcheck, run by its shim (docker's HEALTHCHECK rules).

Why the shim and not the daemon: the shim outlives the daemon, so a container keeps being
checked (and a compose-style waiter keeps seeing fresh results) while ctrd is down or
restarting; the probes are execs, which the shim already runs; and the daemon stays free of one
timer per container. The daemon reads the state with the Health long poll (an answer per probe
result) and turns status changes into `health_status` events, also for changes it missed while
it was down.

Rules, as docker's: the first probe runs one interval after the start; during the start period a
failure does not count (a success still makes the container healthy) and probes run every start
interval; `retries` failures in a row make it unhealthy, a success makes it healthy again; a
probe still running at its timeout is killed and counts as a failure (exit code -1); the log
keeps the last 5 results, each with at most 4096 bytes of output. No probe runs while the
container is paused.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from ctrd.shim.v1 import shim_pb2

MAX_LOG = 5
MAX_OUTPUT = 4096
NS = 1_000_000_000
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_START_INTERVAL = 5.0

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"

# args, timeout (s) -> (exit code, -1 when killed at the timeout or not run; output), or None
# when no probe could run now (the container is paused)
Probe = Callable[[list[str], float], Awaitable[tuple[int, bytes] | None]]


def probe_args(test: list[str]) -> list[str]:
    """["CMD", a...] -> [a...]; ["CMD-SHELL", s] -> /bin/sh -c s (docker's forms)."""
    if test and test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    if test and test[0] == "CMD":
        return list(test[1:])
    return []


def _seconds(ns: int, default: float) -> float:
    return ns / NS if ns > 0 else default


class Health:
    def __init__(self, cfg: shim_pb2.HealthConfig, probe: Probe, clock: Callable[[], float] = time.time) -> None:
        self.args = probe_args(list(cfg.test))
        self.interval = _seconds(cfg.interval_ns, DEFAULT_INTERVAL)
        self.timeout = _seconds(cfg.timeout_ns, DEFAULT_TIMEOUT)
        self.retries = cfg.retries if cfg.retries > 0 else DEFAULT_RETRIES
        self.start_period = _seconds(cfg.start_period_ns, 0.0)
        self.start_interval = _seconds(cfg.start_interval_ns, DEFAULT_START_INTERVAL)
        self._probe = probe
        self._clock = clock
        self.started_at = clock()
        self.seq = 1  # the "starting" state is the first thing a reader sees
        self.status = STARTING
        self.failing_streak = 0
        self.log: list[shim_pb2.HealthResult] = []
        self._waiters: list[asyncio.Future[None]] = []
        self.stopped = False  # the container exited: no more results; long polls answer at once
        self._runner: asyncio.Task[None] | None = None
        self._probing = False

    def in_start_period(self) -> bool:
        return self.start_period > 0 and self._clock() - self.started_at < self.start_period

    def next_delay(self) -> float:
        if self.status == STARTING and self.in_start_period():
            return self.start_interval
        return self.interval

    def record(self, start: float, end: float, code: int, output: bytes) -> None:
        """One probe's result: the streak, the status and the log as docker updates them."""
        text = output[:MAX_OUTPUT].decode("utf-8", "replace")
        self.log.append(shim_pb2.HealthResult(start=start, end=end, exit_code=code, output=text))
        del self.log[:-MAX_LOG]
        if code == 0:
            self.failing_streak = 0
            self.status = HEALTHY
        elif not (self.status == STARTING and self.in_start_period()):
            self.failing_streak += 1
            if self.failing_streak >= self.retries:
                self.status = UNHEALTHY
        self.seq += 1
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def start(self) -> None:
        if self._runner is None and not self.stopped:
            self.started_at = self._clock()
            self._runner = asyncio.ensure_future(self.run())

    def stop(self) -> None:
        """The container exited: pending long polls answer with the last state (same seq), so
        the daemon's reader ends and no call keeps the shim from shutting down. A probe in flight
        is not cancelled (its exec ends with the container); the loop ends after it."""
        self.stopped = True
        self._wake()
        if self._runner is not None and not self._probing:
            self._runner.cancel()

    async def finished(self, timeout: float) -> None:
        """Wait (bounded) for the loop to end after stop()."""
        if self._runner is not None and not self._runner.done():
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._runner), timeout)

    async def probe_once(self) -> None:
        start = self._clock()
        result = await self._probe(self.args, self.timeout)
        if result is not None:
            self.record(start, self._clock(), result[0], result[1])

    async def run(self) -> None:
        while not self.stopped:
            await asyncio.sleep(self.next_delay())
            if self.stopped:
                break
            self._probing = True
            try:
                await self.probe_once()
            finally:
                self._probing = False

    async def wait_after(self, seq: int) -> None:
        while self.seq <= seq and not self.stopped:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            await fut

    def to_proto(self) -> shim_pb2.HealthResponse:
        return shim_pb2.HealthResponse(seq=self.seq, status=self.status, failing_streak=self.failing_streak,
                                       log=self.log)


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for the durations a healthcheck takes: 300ms, 2s, 1m30s."""
    if seconds < 1:
        return f"{round(seconds * 1000, 3):g}ms"
    minutes, rest = divmod(round(seconds, 9), 60)
    text = f"{rest:g}s"
    if minutes:
        hours, minutes = divmod(int(minutes), 60)
        text = (f"{hours}h" if hours else "") + f"{minutes}m" + text
    return text


def timeout_message(timeout: float) -> bytes:
    """docker's output for a probe killed at its timeout."""
    return f"Health check exceeded timeout ({go_duration(timeout)})".encode()
