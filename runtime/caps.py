"""Linux capability names and the bit arithmetic the setup needs."""

from __future__ import annotations

from ctrd import capabilities

TYPE_CHECKING = False  # collections.abc only for annotations: `collections` is ~1.5 ms of a create (runtime.sigs)
if TYPE_CHECKING:
    from collections.abc import Iterable

NAMES = capabilities.NAMES  # index = capability number
NUMBERS: dict[str, int] = {name: i for i, name in enumerate(NAMES)}


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


# Read once at import: the child must not read host files after pivot_root.
LAST_CAP = _last_cap()


def mask(names: Iterable[str]) -> int:
    """Bit mask of the named capabilities the running kernel knows (newer names are skipped)."""
    bits = 0
    for name in names:
        n = NUMBERS[name]
        if n <= LAST_CAP:
            bits |= 1 << n
    return bits


def numbers(names: Iterable[str]) -> list[int]:
    return [NUMBERS[n] for n in names if NUMBERS[n] <= LAST_CAP]
