"""JSON for the state file and the error log line of every `ctrd-runtime` call, through the C
scanner and encoder of CPython's `_json` accelerator, without the `json` package.

Why: containerd and dockerd start one `ctrd-runtime` per verb and container (create, start,
delete, delete --force), and `start`/`delete` need JSON only to read and rewrite the small state
file. `import json` brings `re` (and with it enum, functools, collections): ~8 ms of such a call on
this machine (hyperfine, 2026-12-06: `python3 -S -c 'import json'` 15.6 ms, `python3 -S -c 'import
_json'` with errno/time/select 8.3 ms, bare interpreter 7.5 ms). The `json` package's own fast path
is these same two C functions (json.decoder.JSONDecoder / json.encoder.c_make_encoder); this module
calls them with json's defaults, so the text read and written is exactly `json.loads`/`json.dumps`'s.
`_json` is part of CPython (the runtime needs CPython anyway: ctypes, fork, the launcher).
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

_WS = " \t\n\r"


class _Context:
    """What the C scanner reads from a json.JSONDecoder: its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


def _not_serializable(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")  # json's words


# typeshed types the scanner's context as the scanner itself; the C code reads only the attributes.
_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]
# markers None: no circular-reference check (json.dumps(check_circular=False)); the state is a tree.
_encode = _json.make_encoder(None, _not_serializable, _json.encode_basestring_ascii, None, ": ", ", ",
                             False, False, True)


def loads(text: str) -> Any:
    """json.loads(text) for a str; ValueError (json.JSONDecodeError) for anything that is not one
    JSON value, with the position as json words it."""
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, end = _scan(text, start)
    except StopIteration as exc:  # its value is where the scanner stopped, as in json.decoder
        _fail("Expecting value", text, exc.value)
    if text[end:].strip(_WS):
        _fail("Extra data", text, end + len(text[end:]) - len(text[end:].lstrip(_WS)))
    return value


def dumps(value: Any) -> str:
    """json.dumps(value) with json's defaults (ASCII, ", " and ": " separators)."""
    if isinstance(value, str):
        return str(_json.encode_basestring_ascii(value))
    return "".join(_encode(value, 0))


def _fail(msg: str, text: str, pos: int) -> NoReturn:
    from json import JSONDecodeError  # only on the error path

    raise JSONDecodeError(msg, text, pos)
