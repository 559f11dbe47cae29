"""Signal names and numbers as docker accepts them: "SIGTERM", "TERM", "15", "SIGRTMIN+3"."""

from __future__ import annotations

import signal

from ctrd.errdefs import InvalidArgument

SIGRTMIN = int(signal.SIGRTMIN)
SIGRTMAX = int(signal.SIGRTMAX)

_BY_NAME: dict[str, int] = {
    s.name: int(s) for s in signal.Signals if not s.name.startswith("SIG_") and s.name not in ("SIGRTMIN", "SIGRTMAX")
}
_BY_NAME.update({"SIGRTMIN": SIGRTMIN, "SIGRTMAX": SIGRTMAX})


def parse_signal(value: str, field: str = "signal") -> int:
    """Signal number for a name or number; InvalidArgument naming `field` otherwise."""
    text = value.strip()
    if not text:
        raise InvalidArgument(f"{field}: empty signal")
    if text.isdigit():
        num = int(text)
        if 1 <= num <= SIGRTMAX:
            return num
        raise InvalidArgument(f"{field}: invalid signal: {value}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    for base in ("SIGRTMIN+", "SIGRTMAX-"):
        if name.startswith(base) and name[len(base):].isdigit():
            off = int(name[len(base):])
            num = SIGRTMIN + off if base.startswith("SIGRTMIN") else SIGRTMAX - off
            if SIGRTMIN <= num <= SIGRTMAX:
                return num
    if name in _BY_NAME:
        return _BY_NAME[name]
    raise InvalidArgument(f"{field}: invalid signal: {value}")


def signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return str(num)
