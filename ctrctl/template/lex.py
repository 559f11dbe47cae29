"""Go text/template's lexer, for the actions people type in `--format`: text and `{{ ... }}` items."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ctrctl.template.errors import TemplateError

KEYWORDS = frozenset({"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"})

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<punct>[()|,])
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]+|0[bB][01_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][+-]?\d+)?))
  | (?P<variable>\$[A-Za-z0-9_]*)
  | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str  # string raw char declare assign punct number variable field ident
    text: str
    glued: bool = False  # no space before it: `$x.Name` and `(...).Name` chain, `$x .Name` does not


@dataclass(frozen=True)
class Item:
    """A piece of the template: literal text, or one action with its tokens (no spaces kept)."""

    text: str
    action: tuple[Token, ...] | None = None
    source: str = ""  # the action as written, for error messages


def _action_end(template: str, start: int) -> int:
    """Where the `}}` closing the action that starts at `start` is, skipping quoted strings."""
    i, quote = start, ""
    while i < len(template):
        ch = template[i]
        if quote:
            if ch == "\\" and quote != "`":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"`'":
            quote = ch
        elif template.startswith("}}", i):
            return i
        i += 1
    raise TemplateError(f"unclosed action in {template[start - 2:]!r}")


def _tokens(body: str, source: str) -> tuple[Token, ...]:
    out: list[Token] = []
    pos, spaced = 0, True
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            raise TemplateError(f"unexpected {body[pos]!r} in {source}")
        kind = m.lastgroup or ""
        if kind != "space":
            out.append(Token(kind, m.group(), not spaced))
        spaced = kind == "space"
        pos = m.end()
    return tuple(out)


def lex(template: str) -> list[Item]:
    items: list[Item] = []
    pos = 0
    while True:
        start = template.find("{{", pos)
        if start < 0:
            items.append(Item(template[pos:]))
            return items
        text = template[pos:start]
        body_start = start + 2
        if template.startswith("- ", body_start) or template.startswith("-\t", body_start) \
                or template.startswith("-\n", body_start):
            text = text.rstrip(" \t\r\n")
            body_start += 1
        items.append(Item(text))
        end = _action_end(template, body_start)
        body = template[body_start:end]
        pos = end + 2
        if body.endswith((" -", "\t-", "\n-")):
            body = body[:-1]
            rest = template[pos:]
            pos += len(rest) - len(rest.lstrip(" \t\r\n"))
        source = "{{" + template[start + 2:end] + "}}"
        stripped = body.strip()
        if stripped.startswith("/*"):
            if not stripped.endswith("*/"):
                raise TemplateError(f"unclosed comment in {source}")
            continue
        items.append(Item("", _tokens(body, source), source))
