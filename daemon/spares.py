"""Emptied directories kept for reuse instead of deleted (a removed container's layers and record
directory, see daemon/layers/overlay2.py for why), up to a bound per kind. Filled by a removal's
background thread, taken by a create's: one lock."""

from __future__ import annotations

import threading
from pathlib import Path


class Spares:
    def __init__(self, limit: int, kinds: int = 1) -> None:
        self.limit = limit
        self._kept: tuple[list[Path], ...] = tuple([] for _ in range(kinds))
        self._lock = threading.Lock()

    def room(self, kind: int | None = None) -> bool:
        """Whether `kind` (None: any kind) has room, checked before emptying a directory."""
        kinds = self._kept if kind is None else (self._kept[kind],)
        return any(len(k) < self.limit for k in kinds)

    def keep(self, kind: int, path: Path) -> bool:
        """Keep `path`; False when `kind` is full (the caller deletes it)."""
        with self._lock:
            if len(self._kept[kind]) >= self.limit:
                return False
            self._kept[kind].append(path)
            return True

    def take(self, kind: int = 0) -> Path | None:
        with self._lock:
            kept = self._kept[kind]
            return kept.pop() if kept else None
