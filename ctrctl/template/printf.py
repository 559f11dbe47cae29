"""Go's fmt.Sprintf for the verbs people use in templates (%s %v %d %q %t %f %e %g %x %X %o %b %c %%)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ctrctl.template.values import go_float, go_str, go_type

_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?([a-zA-Z%])")


def _bad(verb: str, value: Any) -> str:
    return f"%!{verb}({go_type(value)}={go_str(value)})"


def _one(flags: str, width: str | None, prec: str | None, verb: str, value: Any) -> str:
    spec = flags.replace("#", "") + (width or "") + (f".{prec or 0}" if prec is not None else "")
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if verb == "s" and isinstance(value, int | float):  # bool is an int too
        return _bad(verb, value)
    if verb in "sv":
        text = go_str(value) if not (verb == "v" and isinstance(value, float) and prec is None) else go_float(value)
        if prec is not None and verb == "s":
            text = text[: int(prec or 0)]
        return f"{text:{'<' if '-' in flags else '>'}{width or ''}}"
    if verb == "q":
        if not isinstance(value, str):
            return _bad(verb, value)
        return f"{json.dumps(value, ensure_ascii=False):{'<' if '-' in flags else '>'}{width or ''}}"
    if verb == "t":
        return ("true" if value else "false") if isinstance(value, bool) else _bad(verb, value)
    if verb in "dxXobc":
        if not is_int:
            if verb in "xX" and isinstance(value, str):
                return value.encode().hex() if verb == "x" else value.encode().hex().upper()
            return _bad(verb, value)
        if verb == "c":
            return chr(value)
        return format(value, ("<" + spec.replace("-", "") if "-" in flags else spec) + verb)
    if verb in "feEgG":
        if not isinstance(value, float):  # Go: %f of an int is %!f(int=3)
            return _bad(verb, value)
        if verb in "gG" and prec is None:
            return go_float(value)
        return format(value, (spec if prec is not None else spec + ".6") + verb)
    return f"%!{verb}({go_type(value)}={go_str(value)})"


def sprintf(fmt: str, args: Sequence[Any]) -> str:
    out: list[str] = []
    pos, used = 0, 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_one(flags, width, prec, verb, args[used]))
        used += 1
    out.append(fmt[pos:])
    if used < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{go_type(a)}={go_str(a)}" for a in args[used:]) + ")")
    return "".join(out)
