"""Go text/template, as docker's `--format` uses it: `{{.A.B}}`, pipelines, variables, if/with/range
with else, and docker's functions (json, join, split, upper, lower, title, pad, truncate) beside
Go's builtins (index, len, slice, eq/ne/lt/le/gt/ge, and/or/not, print/printf/println, html, js,
urlquery). Anything else is a TemplateError naming the action, at parse time where Go's is.

    lex.py     text and {{ }} items      parse.py   items -> nodes      nodes.py   the tree
    execute.py nodes over a value        funcs.py   the functions       values.py  Go's printing
    printf.py  fmt.Sprintf's verbs       errors.py  TemplateError
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from ctrctl.template import nodes
from ctrctl.template.errors import TemplateError
from ctrctl.template.execute import Executor
from ctrctl.template.funcs import ARITY
from ctrctl.template.parse import Parser

__all__ = ["TemplateError", "parse", "render"]


@functools.lru_cache(maxsize=32)
def parse(template: str) -> list[nodes.Node]:
    return Parser(template, ARITY).parse()


def render(template: str, obj: Any, headers: Mapping[str, str] | None = None) -> str:
    """Execute `template` on `obj`; with `headers`, the table header run (fields name their column)."""
    return Executor(obj, headers).run(parse(template), obj)
