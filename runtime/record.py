"""A frozen value class without `dataclasses`, for the few records every `ctrd-runtime` call makes
(State, Stats, Stdio).

`import dataclasses` brings `inspect` (ast, dis, tokenize, ...): ~8 ms of a ~40 ms `ctrd-runtime
state|start|kill|delete` on this machine (python -X importtime, min of 15, clean interpreter,
2026-12-06), and containerd/dockerd start one such process per verb and container; these verbs
do not import `typing` either (~3 ms). The spec records, which only create/run/exec build, are
`runtime.value.Value`s (NamedTuple's kind, without typing at run time: it says why). A subclass
lists its fields in `__slots__` and sets them in its own typed `__init__` through `_set`."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Self


class Record:
    __slots__: tuple[str, ...] = ()

    def _set(self, **values: Any) -> None:
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is frozen")

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def replace(self, **changes: Any) -> Self:
        return type(self)(**{**self.as_dict(), **changes})

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, k) for k in self.__slots__))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self.__slots__)})"
