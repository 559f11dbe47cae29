"""Field checks shared by the config.json parsers: each raises SpecError naming the field."""

from __future__ import annotations

import os

from runtime.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

MAX_ID = 2**31 - 1  # larger uids/gids are refused: they have been used to wrap to root (CVE-2024-40635)


def as_object(v: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(v, dict):
        raise SpecError(where, "must be an object")
    return v


def strs(v: Any, where: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise SpecError(where, "must be a list of strings")
    return v


def paths(v: Any, where: str) -> tuple[str, ...]:
    items = strs(v, where)
    for i, p in enumerate(items):
        if not os.path.isabs(p):
            raise SpecError(f"{where}[{i}]", f"{p!r} is not an absolute path")
    return tuple(os.path.normpath(p) for p in items)


def ident(v: Any, where: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_ID:
        raise SpecError(where, f"{v!r} is not an id in 0..{MAX_ID}")
    return v


def uint(v: Any, where: str, top: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= top:
        raise SpecError(where, f"{v!r} is not an unsigned integer")
    return v


def limit(v: Any, where: str) -> int | None:
    if v is None or v == 0:  # 0 means "not set" in docker's and runc's specs
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < -1:
        raise SpecError(where, f"{v!r} is not a positive integer or -1")
    return v


def opt_int(v: Any, where: str, lo: int, hi: int) -> int | None:
    if v is None or v == 0:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise SpecError(where, f"{v!r} is not in {lo}..{hi}")
    return v
