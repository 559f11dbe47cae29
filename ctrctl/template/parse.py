"""Items from the lexer to a node tree, with Go's parse-time checks (unknown function, unmatched end)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from ctrctl.template import nodes as n
from ctrctl.template.errors import TemplateError
from ctrctl.template.lex import KEYWORDS, Item, Token, lex

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)")


def _unquote(text: str, source: str) -> str:
    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "xuU":
            return chr(int(e[1:], 16))
        if e[0].isdigit():
            return chr(int(e, 8))
        if e in _ESCAPES:
            return _ESCAPES[e]
        raise TemplateError(f"unknown escape sequence \\{e} in {source}")

    return _ESCAPE.sub(one, text[1:-1])


def _number(text: str, source: str) -> int | float:
    clean = text.replace("_", "")
    try:
        return int(clean, 0) if not re.search(r"[.eE]", clean) or clean.lower().startswith(("0x", "-0x", "+0x")) \
            else float(clean)
    except ValueError:
        if re.fullmatch(r"[+-]?0[0-7]+", clean):  # Go's old-style octal 0755
            return int(clean.replace("0", "0o", 1), 0)
        raise TemplateError(f"bad number syntax: {text!r} in {source}")


class _Tokens:
    def __init__(self, tokens: tuple[Token, ...], source: str) -> None:
        self.tokens, self.pos, self.source = tokens, 0, source

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise TemplateError(f"unexpected end of {self.source}")
        self.pos += 1
        return tok

    def glued_fields(self) -> tuple[str, ...]:
        names: list[str] = []
        while (tok := self.peek()) is not None and tok.kind == "field" and tok.glued and tok.text != ".":
            names.extend(self.take().text[1:].split("."))
        return tuple(names)


class Parser:
    def __init__(self, template: str, arity: Mapping[str, tuple[int, int | None]]) -> None:
        self.items: Iterator[Item] = iter(lex(template))
        self.arity = arity
        self.ranges = 0

    def parse(self) -> list[n.Node]:
        body, stop = self._list()
        if stop is not None:
            raise TemplateError(f"unexpected {stop.source}")
        return body

    def _list(self) -> tuple[list[n.Node], Item | None]:
        """Nodes up to an `{{end}}` or `{{else ...}}` (returned) or the end of the template (None)."""
        out: list[n.Node] = []
        for item in self.items:
            if item.action is None:
                if item.text:
                    out.append(item.text)
                continue
            toks = _Tokens(item.action, item.source)
            first = toks.peek()
            word = first.text if first is not None and first.kind == "ident" else ""
            if word in ("end", "else"):
                return out, item
            if word in ("if", "with", "range"):
                toks.take()
                out.append(self._branch(word, toks))
            elif word in ("break", "continue"):
                if self.ranges == 0:
                    raise TemplateError(f"{item.source} outside {{{{range}}}}")
                if len(item.action) > 1:
                    raise TemplateError(f"unexpected words after {word} in {item.source}")
                out.append(n.Jump(word))
            elif word in KEYWORDS:  # define, template, block: named templates have no use in --format
                raise TemplateError(f"{{{{{word}}}}} is not supported in {item.source}")
            else:
                out.append(n.Action(self._pipeline(toks, "command")))
        return out, None

    def _branch(self, kind: str, toks: _Tokens) -> n.Branch:
        pipe = self._pipeline(toks, kind, decl_limit=2 if kind == "range" else 1)
        self.ranges += kind == "range"
        body, stop = self._list()
        self.ranges -= kind == "range"
        if stop is None or stop.action is None:
            raise TemplateError(f"unexpected EOF: missing {{{{end}}}} for {pipe.source}")
        branch = n.Branch(kind, pipe, body)
        if stop.action[0].text == "else":
            rest = _Tokens(stop.action[1:], stop.source)
            nested = rest.peek()
            if nested is not None and nested.text in ("if", "with") and kind != "range":
                rest.take()
                branch.orelse = [self._branch(nested.text, rest)]  # `else if` shares the one `end`
                return branch
            if nested is not None:
                raise TemplateError(f"unexpected words after else in {stop.source}")
            branch.orelse, stop = self._list()
            if stop is None or stop.action is None or stop.action[0].text != "end":
                raise TemplateError(f"unexpected EOF: missing {{{{end}}}} for {pipe.source}")
        if stop.action is not None and len(stop.action) > 1:
            raise TemplateError(f"unexpected words after end in {stop.source}")
        return branch

    def _pipeline(self, toks: _Tokens, context: str, decl_limit: int = 1) -> n.Pipeline:
        source = toks.source
        decl: list[str] = []
        assign = False
        ops = [t.kind for t in toks.tokens[toks.pos: toks.pos + 2 * decl_limit]]
        if "declare" in ops or "assign" in ops:
            # `$x :=`, `$x =`, `$i, $e :=`
            while True:
                var = toks.take()
                if var.kind != "variable":
                    raise TemplateError(f"unexpected {var.text!r} in declaration in {source}")
                decl.append(var.text)
                sep = toks.take()
                if sep.kind in ("declare", "assign"):
                    assign = sep.kind == "assign"
                    break
                if sep.text != "," or len(decl) >= decl_limit:
                    raise TemplateError(f"too many declarations in {source}")
        commands = [self._command(toks)]
        while (tok := toks.peek()) is not None and tok.text == "|":
            toks.take()
            commands.append(self._command(toks, piped=True))
        if toks.peek() is not None:
            raise TemplateError(f"unexpected {toks.peek().text!r} in {source}")  # type: ignore[union-attr]
        if not commands[0].args:
            raise TemplateError(f"missing value for {context} in {source}")
        return n.Pipeline(tuple(commands), tuple(decl), assign, source)

    def _command(self, toks: _Tokens, piped: bool = False) -> n.Command:
        args: list[n.Arg] = []
        while (tok := toks.peek()) is not None and tok.text not in ("|", ")"):
            args.append(self._operand(toks))
        if not args and (toks.peek() is not None or piped):
            raise TemplateError(f"missing value for command in {toks.source}")
        for i, arg in enumerate(args):  # a function as a later argument is called with none
            if isinstance(arg, n.Function):
                self._check_arity(arg.name, len(args) - 1 + piped if i == 0 else 0, toks.source)
        return n.Command(tuple(args))

    def _check_arity(self, name: str, count: int, source: str) -> None:
        """Go checks a call's argument count when it runs; the count is known here, so say it early."""
        lo, hi = self.arity.get(name, (1, None))
        if count < lo or (hi is not None and count > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            raise TemplateError(f"wrong number of args for {name}: want {want} got {count} in {source}")

    def _operand(self, toks: _Tokens) -> n.Arg:
        tok = toks.take()
        src = toks.source
        if tok.kind == "field":
            return n.Field(tuple(tok.text[1:].split(".")) if tok.text != "." else ())
        if tok.kind == "variable":
            return n.Variable(tok.text, toks.glued_fields())
        if tok.kind in ("string", "raw"):
            return n.Literal(_unquote(tok.text, src) if tok.kind == "string" else tok.text[1:-1])
        if tok.kind == "char":
            text = _unquote(tok.text, src)
            if len(text) != 1:
                raise TemplateError(f"malformed character constant {tok.text} in {src}")
            return n.Literal(ord(text))
        if tok.kind == "number":
            return n.Literal(_number(tok.text, src))
        if tok.text == "(":
            inner: list[n.Command] = [self._command(toks)]
            while (nxt := toks.peek()) is not None and nxt.text == "|":
                toks.take()
                inner.append(self._command(toks, piped=True))
            if nxt is None or nxt.text != ")" or not inner[0].args:
                raise TemplateError(f"unclosed left paren in {src}")
            toks.take()
            return n.Chain(n.Pipeline(tuple(inner), source=src), toks.glued_fields())
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return n.Literal(tok.text == "true")
            if tok.text == "nil":
                return n.Literal(None)
            if tok.text in KEYWORDS:
                raise TemplateError(f"unexpected {tok.text!r} in {src}")
            if tok.text not in self.arity:
                raise TemplateError(f'function "{tok.text}" not defined in {src}')
            return n.Function(tok.text)
        raise TemplateError(f"unexpected {tok.text!r} in {src}")
