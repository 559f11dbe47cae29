"""What a launch returns to the daemon."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ShimHandle:
    address: str  # unix:///<exec_root>/shims/<id>/shim.sock
    pid: int
    state_dir: Path
