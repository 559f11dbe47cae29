"""Paths named after long-lived strings (container ids), built without interning those strings.

pathlib interns every component it parses (`sys.intern`), and CPython interns a string in place
when no equal string is interned yet: `root / c.id` turns the record's own id into an interned
string for as long as the record lives. The interpreter's interned-string table then grows by one
entry per container and doubles in steps (2**16 → 2**17 slots: +0.96 MB in one go). Measured
2026-12-06 on the daemon with 200 sleeping containers (`gc.get_referents` strings checked with
`sys.intern(copy) is s` before and after the starts): +199 interned 64-hex ids, none after this
module; the tracemalloc diff of the same run held that 0.96 MB table resize (4.8 KB/container).
`under` joins the strings first, so pathlib parses and interns copies that die with the Path.
"""

from __future__ import annotations

import os
from pathlib import Path


def under(base: Path | str, *names: str) -> Path:
    """`base / name / ...` (same meaning, absolute names included) without interning `names`."""
    return Path(os.path.join(base, *names))
