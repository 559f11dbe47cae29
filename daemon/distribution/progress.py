"""Pull/push progress as docker shows it: one line per layer id, then a few summary lines."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    id: str  # short digest of a layer, a tag, or "" for a summary line
    status: str  # "Waiting", "Downloading", "Download complete", "Pull complete", "Digest: ..."
    current: int = 0
    total: int = 0


Emit = Callable[[Event], None]


def short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


class Throttle:
    """Byte counts for one layer, passed on at most every `interval` seconds (and at the end)."""

    def __init__(self, emit: Emit, ident: str, status: str, interval: float = 0.1) -> None:
        self.emit, self.ident, self.status, self.interval = emit, ident, status, interval
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self.last >= self.interval:
            self.last = now
            self.emit(Event(self.ident, self.status, done, total))
