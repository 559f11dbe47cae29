"""The functions a `--format` template can call: Go's builtins and docker's (json, join, upper, ...).

Each entry is (minimum args, maximum args or None for any, the function). `and`/`or` are in the
executor, which evaluates their arguments lazily as Go does.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from ctrctl.template.errors import TemplateError
from ctrctl.template.printf import sprintf
from ctrctl.template.values import MISSING, go_json, go_str, go_type, truth

Func = Callable[..., Any]


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TemplateError(f"wrong type for value; expected string; got {go_type(value)}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateError(f"wrong type for value; expected int; got {go_type(value)}")
    return value


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if item is None or item is MISSING:
            raise TemplateError("index of untyped nil")
        if isinstance(item, Mapping):
            if not isinstance(key, str):
                raise TemplateError(f"value has type {go_type(key)}; should be string")
            item = item.get(key)
        elif isinstance(item, list | tuple | str):
            i = _int(key)
            if not 0 <= i < len(item):
                raise TemplateError(f"index out of range: {i}")
            item = item[i] if not isinstance(item, str) else item.encode()[i]
        else:
            raise TemplateError(f"can't index item of type {go_type(item)}")
    return item


def _slice(item: Any, *bounds: Any) -> Any:
    if not isinstance(item, list | tuple | str):
        raise TemplateError(f"can't slice item of type {go_type(item)}")
    if len(bounds) > 2 + (not isinstance(item, str)):
        raise TemplateError("too many slice indexes")
    idx = [_int(b) for b in bounds]
    lo, hi = (idx + [0, len(item)][len(idx):])[:2]
    if not 0 <= lo <= hi <= len(item):
        raise TemplateError(f"slice index out of range: {lo}:{hi}")
    return item[lo:hi]


def _len(item: Any) -> int:
    if isinstance(item, str):
        return len(item.encode())  # Go counts bytes
    if isinstance(item, list | tuple | Mapping):
        return len(item)
    raise TemplateError(f"len of {'nil pointer' if item is None or item is MISSING else 'type ' + go_type(item)}")


def _comparable(a: Any, b: Any, ordered: bool) -> None:
    kinds = (go_type(a), go_type(b))
    basic = {"bool", "int", "float64", "string"} - ({"bool"} if ordered else set())
    if kinds[0] not in basic or kinds[1] not in basic:
        bad = kinds[0] if kinds[0] not in basic else kinds[1]
        raise TemplateError(f"invalid type for comparison: {bad}" if ordered else "incompatible types for comparison")
    if kinds[0] != kinds[1]:
        raise TemplateError("incompatible types for comparison")


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise TemplateError("missing argument for comparison")
    for b in others:
        if (a is None or a is MISSING) and (b is None or b is MISSING):
            return True
        _comparable(a, b, ordered=False)
        if a == b:
            return True
    return False


def _ordered(op: Callable[[Any, Any], bool]) -> Func:
    def compare(a: Any, b: Any) -> bool:
        _comparable(a, b, ordered=True)
        return op(a, b)

    return compare


def _sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = ""
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_str(a)
    return out


def _title(text: Any) -> str:
    """strings.Title: upper-case the first letter of each word (the rest is left alone)."""
    out, prev = [], " "
    for ch in _string(text):
        out.append(ch.upper() if not (prev.isalnum() or prev == "_" or prev == "'") else ch)
        prev = ch
    return "".join(out)


def _split(text: Any, sep: Any) -> list[str]:
    text, sep = _string(text), _string(sep)
    return list(text) if sep == "" else text.split(sep)


def _join(items: Any, sep: Any) -> str:
    if not isinstance(items, list | tuple):
        raise TemplateError(f"wrong type for value; expected []string; got {go_type(items)}")
    return _string(sep).join(go_str(i) for i in items)


def _pad(text: Any, prefix: Any, suffix: Any) -> str:
    word = _string(text)
    return word and " " * _int(prefix) + word + " " * _int(suffix)


def _truncate(text: Any, length: Any) -> str:
    return _string(text)[: _int(length)]


def _js(*args: Any) -> str:
    def esc(ch: str) -> str:
        if ch in "\\'\"":
            return "\\" + ch
        if ch in "<>&=" or ord(ch) < 0x20:
            return f"\\u{ord(ch):04X}"
        return ch

    return "".join(esc(ch) for ch in _sprint(*args))


def _html(*args: Any) -> str:
    return html.escape(_sprint(*args)).replace("&#x27;", "&#39;").replace("&quot;", "&#34;").replace("\0", "\uFFFD")


def _call(fn: Any, *args: Any) -> Any:
    raise TemplateError(f"non-function of type {go_type(fn)}")


BUILTINS: dict[str, tuple[int, int | None, Func]] = {
    "index": (1, None, _index),
    "slice": (1, None, _slice),
    "len": (1, 1, _len),
    "not": (1, 1, lambda v: not truth(v)),
    "eq": (1, None, _eq),
    "ne": (2, 2, lambda a, b: not _eq(a, b)),
    "lt": (2, 2, _ordered(lambda a, b: a < b)),
    "le": (2, 2, _ordered(lambda a, b: a <= b)),
    "gt": (2, 2, _ordered(lambda a, b: a > b)),
    "ge": (2, 2, _ordered(lambda a, b: a >= b)),
    "print": (0, None, _sprint),
    "println": (0, None, lambda *a: " ".join(go_str(v) for v in a) + "\n"),
    "printf": (1, None, lambda f, *a: sprintf(_string(f), a)),
    "html": (0, None, _html),
    "js": (0, None, _js),
    "urlquery": (0, None, lambda *a: urllib.parse.quote_plus(_sprint(*a), safe="")),
    "call": (1, None, _call),
}

# docker/cli templates.basicFunctions
DOCKER: dict[str, tuple[int, int | None, Func]] = {
    "json": (1, 1, go_json),
    "split": (2, 2, _split),
    "join": (2, 2, _join),
    "title": (1, 1, _title),
    "lower": (1, 1, lambda s: _string(s).lower()),
    "upper": (1, 1, lambda s: _string(s).upper()),
    "pad": (3, 3, _pad),
    "truncate": (2, 2, _truncate),
}

# docker's table headers run the same template with these: each returns its first argument, the header
HEADER = {name: (lo, hi, lambda v, *_: v) for name, (lo, hi, _f) in DOCKER.items()}

FUNCTIONS = {**BUILTINS, **DOCKER}
ARITY = {**{name: (lo, hi) for name, (lo, hi, _f) in FUNCTIONS.items()}, "and": (1, None), "or": (1, None)}

