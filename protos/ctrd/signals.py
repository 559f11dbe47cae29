"""Signal names and numbers as docker accepts them: "SIGTERM", "TERM", "term", "15", "SIGRTMIN+3",
"RTMIN+3", "SIGRTMAX-2"; numbers 1..64 (Linux's _NSIG - 1).

One parser for the CLI, the daemon and the runtime. Leaf module: standard library only, so that
`runtime/` may import it; it raises ValueError and each caller words the error its own way.
"""

from __future__ import annotations

import signal

SIGRTMIN = int(signal.SIGRTMIN)  # 34 with glibc (it keeps 32 and 33 for itself), as docker's table
SIGRTMAX = int(signal.SIGRTMAX)
MAX_SIGNAL = 64

_BY_NAME: dict[str, int] = {
    s.name: int(s) for s in signal.Signals if not s.name.startswith("SIG_") and s.name not in ("SIGRTMIN", "SIGRTMAX")
}
_BY_NAME.update({"SIGRTMIN": SIGRTMIN, "SIGRTMAX": SIGRTMAX})


def parse(value: str) -> int:
    """The signal number for a name (with or without SIG, any case) or a number 1..64.

    Raises ValueError("invalid signal: <value>") for anything else."""
    text = value.strip()
    if text.isdigit():
        num = int(text)
        if 1 <= num <= MAX_SIGNAL:
            return num
        raise ValueError(f"invalid signal: {value}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    for base, sign in (("SIGRTMIN+", 1), ("SIGRTMAX-", -1)):
        rest = name[len(base):]
        if name.startswith(base) and rest.isdigit():
            num = (SIGRTMIN if sign > 0 else SIGRTMAX) + sign * int(rest)
            if SIGRTMIN <= num <= SIGRTMAX:
                return num
    if name in _BY_NAME:
        return _BY_NAME[name]
    raise ValueError(f"invalid signal: {value}")


def name(num: int) -> str:
    """SIGTERM for 15, SIGRTMIN for 34; the number as text when it has no name of its own."""
    try:
        return signal.Signals(num).name
    except ValueError:
        return str(num)
