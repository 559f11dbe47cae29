"""`linux.seccomp` of config.json, parsed and validated into a frozen `Profile`.

Every wrong value raises SpecError (invalid_argument) naming its field path, e.g.
`linux.seccomp.syscalls[3].action`. Names of syscalls are not checked here: like runc, a name
this libseccomp does not know is skipped at compile time (the syscall is newer than the library,
so the kernel answers it through the ENOSYS stub or the default action).
"""

from __future__ import annotations

import hashlib

from ctrd import seccomp as vocab
from runtime.errors import SpecError
from runtime.record import Record
from runtime.value import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

ACTIONS = vocab.ACTIONS
OPERATORS = vocab.OPERATORS
ARCHITECTURES = vocab.ARCHITECTURES
FLAGS = vocab.FLAGS
MAX_ARG_INDEX = vocab.MAX_ARG_INDEX
EPERM = 1
_U64 = 2**64 - 1


class Arg(Record):
    """(a Record, not a NamedTuple: a field named `index` would shadow tuple.index)"""

    __slots__ = ("index", "value", "value_two", "op")  # noqa: RUF023 - the repr's order: Profile.canonical
    index: int
    value: int
    value_two: int
    op: str

    def __init__(self, index: int, value: int, value_two: int, op: str) -> None:
        self._set(index=index, value=value, value_two=value_two, op=op)


class Rule(Value):
    names: tuple[str, ...]
    action: str
    errno_ret: int | None
    args: tuple[Arg, ...]


class Profile(Value):
    default_action: str
    default_errno_ret: int | None
    architectures: tuple[str, ...]
    flags: tuple[str, ...]
    rules: tuple[Rule, ...]

    def canonical(self) -> bytes:
        # repr of frozen records of str/int/tuple is deterministic and ~20x cheaper than
        # json.dumps(asdict(...)): it is computed on every container start
        return repr(self).encode()

    def digest(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    @property
    def flag_bits(self) -> int:
        bits = 0
        for f in self.flags:
            bits |= FLAGS[f]
        return bits


def parse(obj: Any, where: str = "linux.seccomp") -> Profile:
    top = _obj(obj, where)
    default = _action(top.get("defaultAction"), f"{where}.defaultAction")
    default_errno = _errno(top.get("defaultErrnoRet"), f"{where}.defaultErrnoRet")
    archs = []
    for i, a in enumerate(_list(top.get("architectures"), f"{where}.architectures")):
        if a not in ARCHITECTURES:
            raise SpecError(f"{where}.architectures[{i}]", f"unknown architecture {a!r}")
        archs.append(a)
    flags = []
    for i, f in enumerate(_list(top.get("flags"), f"{where}.flags")):
        if f not in FLAGS:
            raise SpecError(f"{where}.flags[{i}]", f"unsupported flag {f!r}")
        flags.append(f)
    if top.get("listenerPath"):
        raise SpecError(f"{where}.listenerPath", "seccomp user notification is not supported")
    rules = tuple(_rule(r, f"{where}.syscalls[{i}]") for i, r in enumerate(_list(top.get("syscalls"), f"{where}.syscalls")))
    return Profile(default, default_errno, tuple(dict.fromkeys(archs)), tuple(dict.fromkeys(flags)), rules)


def _rule(r: Any, where: str) -> Rule:
    r = _obj(r, where)
    names = _list(r.get("names"), f"{where}.names")
    if not names or not all(isinstance(n, str) and n for n in names):
        raise SpecError(f"{where}.names", "must be a non-empty list of syscall names")
    action = _action(r.get("action"), f"{where}.action")
    errno_ret = _errno(r.get("errnoRet"), f"{where}.errnoRet")
    args = []
    for j, a in enumerate(_list(r.get("args"), f"{where}.args")):
        aw = f"{where}.args[{j}]"
        a = _obj(a, aw)
        index = a.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= MAX_ARG_INDEX:
            raise SpecError(f"{aw}.index", f"{index!r} is not an argument index in 0..{MAX_ARG_INDEX}")
        op = a.get("op")
        if op not in OPERATORS:
            raise SpecError(f"{aw}.op", f"unknown operator {op!r}")
        args.append(Arg(index, _u64(a.get("value", 0), f"{aw}.value"), _u64(a.get("valueTwo", 0), f"{aw}.valueTwo"), op))
    return Rule(tuple(names), action, errno_ret, tuple(args))


def _action(v: Any, where: str) -> str:
    if v not in ACTIONS:
        raise SpecError(where, f"unknown action {v!r}")
    if v in vocab.UNSUPPORTED_ACTIONS:
        raise SpecError(where, "SCMP_ACT_NOTIFY (seccomp user notification) is not supported")
    return str(v)


def _errno(v: Any, where: str) -> int | None:
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0xFFFF:
        raise SpecError(where, f"{v!r} is not an errno in 0..65535")
    return v


def _u64(v: Any, where: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= _U64:
        raise SpecError(where, f"{v!r} is not an unsigned 64-bit integer")
    return v


def _obj(v: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(v, dict):
        raise SpecError(where, "must be an object")
    return v


def _list(v: Any, where: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise SpecError(where, "must be a list")
    return v
