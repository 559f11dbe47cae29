"""The parsed template: what the executor walks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Field:  # `.A.B` on dot; `.` alone has no names
    names: tuple[str, ...]


@dataclass(frozen=True)
class Variable:  # `$`, `$x`, `$x.A.B`
    name: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Function:  # a function name: the first word of a command, or an argument called with none
    name: str


@dataclass(frozen=True)
class Literal:  # "text", `raw`, 'c', 12, 1.5, true, false, nil
    value: Any


@dataclass(frozen=True)
class Chain:  # `(pipeline).A.B`
    operand: Pipeline
    names: tuple[str, ...] = ()


Arg = Field | Variable | Function | Literal | Chain


@dataclass(frozen=True)
class Command:
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Pipeline:
    commands: tuple[Command, ...]
    decl: tuple[str, ...] = ()  # `$x :=` or `$i, $e :=`
    assign: bool = False  # `$x = ...` sets an existing variable
    source: str = ""


@dataclass
class Action:  # `{{pipeline}}`: prints the value unless it declares a variable
    pipe: Pipeline


@dataclass
class Branch:  # if / with / range, with their else
    kind: str
    pipe: Pipeline
    body: list[Node] = field(default_factory=list)
    orelse: list[Node] = field(default_factory=list)


@dataclass
class Jump:  # break / continue inside range
    kind: str


Node = str | Action | Branch | Jump
