"""Walks a parsed template over a JSON-like object, the way Go's text/template executes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ctrctl.template import nodes as n
from ctrctl.template.errors import TemplateError
from ctrctl.template.funcs import FUNCTIONS, HEADER, Func
from ctrctl.template.values import MISSING, go_type, printed, truth

_NOTHING: Any = object()  # no value piped in from the previous command


class _Jump(Exception):
    def __init__(self, kind: str) -> None:
        self.kind = kind


class Executor:
    """One run of a template. `headers` set: a table header run, where a field names its column."""

    def __init__(self, root: Any, headers: Mapping[str, str] | None = None) -> None:
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.headers = headers
        self.funcs: dict[str, tuple[int, int | None, Func]] = {**FUNCTIONS, **(HEADER if headers is not None else {})}

    def run(self, body: list[n.Node], dot: Any) -> str:
        out: list[str] = []
        self._walk(body, dot, out)
        return "".join(out)

    def _walk(self, body: list[n.Node], dot: Any, out: list[str]) -> None:
        for node in body:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, n.Action):
                value = self._pipeline(node.pipe, dot)
                if not node.pipe.decl:
                    out.append(printed(value))
            elif isinstance(node, n.Jump):
                raise _Jump(node.kind)
            else:
                self._branch(node, dot, out)

    def _scoped(self, body: list[n.Node], dot: Any, out: list[str]) -> None:
        mark = len(self.vars)
        try:
            self._walk(body, dot, out)
        finally:
            del self.vars[mark:]

    def _branch(self, node: n.Branch, dot: Any, out: list[str]) -> None:
        mark = len(self.vars)
        try:
            if node.kind == "range":
                self._range(node, dot, out)
                return
            value = self._pipeline(node.pipe, dot)
            if truth(value):
                self._scoped(node.body, value if node.kind == "with" else dot, out)
            else:
                self._scoped(node.orelse, dot, out)
        finally:
            del self.vars[mark:]

    def _range(self, node: n.Branch, dot: Any, out: list[str]) -> None:
        pipe = node.pipe
        value = self._pipeline(n.Pipeline(pipe.commands, source=pipe.source), dot)
        if value is None or value is MISSING:
            pairs: list[tuple[Any, Any]] = []
        elif isinstance(value, Mapping):
            pairs = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list | tuple):
            pairs = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            if len(pipe.decl) > 1:
                raise TemplateError(f"can't use {value} to iterate over more than one variable in {pipe.source}")
            pairs = [(i, i) for i in range(value)]
        else:
            raise TemplateError(f"range can't iterate over {printed(value)} in {pipe.source}")
        if not pairs:
            self._scoped(node.orelse, dot, out)
            return
        for key, elem in pairs:
            mark = len(self.vars)
            names = pipe.decl
            if len(names) == 1:
                self.vars.append((names[0], elem))
            elif len(names) == 2:
                self.vars += [(names[0], key), (names[1], elem)]
            try:
                self._walk(node.body, elem, out)
            except _Jump as jump:
                if jump.kind == "break":
                    break
            finally:
                del self.vars[mark:]

    def _pipeline(self, pipe: n.Pipeline, dot: Any) -> Any:
        value = _NOTHING
        for cmd in pipe.commands:
            value = self._command(cmd, dot, value, pipe.source)
        for name in pipe.decl:
            if pipe.assign:
                for i in range(len(self.vars) - 1, -1, -1):
                    if self.vars[i][0] == name:
                        self.vars[i] = (name, value)
                        break
                else:
                    raise TemplateError(f'undefined variable "{name}" in {pipe.source}')
            else:
                self.vars.append((name, value))
        return value

    def _command(self, cmd: n.Command, dot: Any, final: Any, source: str) -> Any:
        first = cmd.args[0]
        if isinstance(first, n.Function):
            return self._call(first.name, cmd.args[1:], dot, final, source)
        if isinstance(first, n.Field) and self.headers is None:
            method = self._arg(first, dot, source)
            if callable(method):  # a method of docker's row (ps's {{.Label "key"}})
                values = [self._arg(a, dot, source) for a in cmd.args[1:]] + ([] if final is _NOTHING else [final])
                try:
                    return method(*values)
                except TypeError:
                    raise TemplateError(f"wrong number of args for {first.names[-1]} in {source}") from None
        if len(cmd.args) > 1 or final is not _NOTHING:
            raise TemplateError(f"can't give argument to non-function in {source}")
        return self._arg(first, dot, source)

    def _call(self, name: str, args: tuple[n.Arg, ...], dot: Any, final: Any, source: str) -> Any:
        count = len(args) + (final is not _NOTHING)
        if name in ("and", "or"):  # Go evaluates these lazily, left to right
            if count == 0:
                raise TemplateError(f"wrong number of args for {name}: want at least 1 got 0 in {source}")
            value: Any = None
            for arg in args:
                value = self._arg(arg, dot, source)
                if truth(value) != (name == "and"):
                    return value
            return final if final is not _NOTHING else value
        lo, hi, fn = self.funcs[name]
        if count < lo or (hi is not None and count > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            raise TemplateError(f"wrong number of args for {name}: want {want} got {count} in {source}")
        values = [self._arg(a, dot, source) for a in args] + ([] if final is _NOTHING else [final])
        try:
            return fn(*[None if v is MISSING else v for v in values])
        except TemplateError as exc:
            raise TemplateError(f"error calling {name}: {exc} in {source}") from None

    def _arg(self, arg: n.Arg, dot: Any, source: str) -> Any:
        if isinstance(arg, n.Literal):
            return arg.value
        if isinstance(arg, n.Function):
            return self._call(arg.name, (), dot, _NOTHING, source)
        if isinstance(arg, n.Field):
            if self.headers is not None and arg.names:
                return self._header(arg.names)
            return self._fields(dot, arg.names, source)
        if isinstance(arg, n.Variable):
            for name, value in reversed(self.vars):
                if name == arg.name:
                    return self._fields(value, arg.names, source)
            raise TemplateError(f'undefined variable "{arg.name}" in {source}')
        return self._fields(self._pipeline(arg.operand, dot), arg.names, source)

    def _header(self, names: tuple[str, ...]) -> str:
        assert self.headers is not None
        return self.headers.get(".".join(names)) or names[-1].upper()

    @staticmethod
    def _fields(value: Any, names: tuple[str, ...], source: str) -> Any:
        for name in names:
            if value is MISSING:
                return MISSING  # Go: a field of a missing key is missing too
            if value is None:
                raise TemplateError(f"nil pointer evaluating interface {{}}.{name} in {source}")
            if not isinstance(value, Mapping):
                raise TemplateError(f"can't evaluate field {name} in type {go_type(value)} in {source}")
            value = value.get(name, MISSING)
        return value
