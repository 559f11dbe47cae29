"""docker's detach-keys syntax, shared by the daemon (which enforces the keys) and ctrctl (which
refuses a bad spec before anything is created): comma-separated keys, each one ASCII character or
`ctrl-<x>` with x in a-z @ [ \\ ] ^ _; "" means the default ctrl-p,ctrl-q."""

from __future__ import annotations

from ctrd import errdefs

DEFAULT = "ctrl-p,ctrl-q"
_CTRL = {c: i + 1 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")} | {
    "@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31,
}


def parse(spec: str) -> bytes:
    """The byte sequence; InvalidArgument naming the field "detach-keys" when it does not parse."""
    spec = spec or DEFAULT
    out = bytearray()
    for key in spec.split(","):
        if len(key) == 1 and key.isascii():
            out.append(ord(key))
            continue
        low = key.lower()
        if len(low) != 6 or not low.startswith("ctrl-") or low[5] not in _CTRL:
            raise errdefs.InvalidArgument(f"detach-keys: invalid escape keys ({spec}) provided: unknown key {key!r}")
        out.append(_CTRL[low[5]])
    return bytes(out)
