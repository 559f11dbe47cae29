"""Every verb the parser records resolves to a function through ctrctl.main's plain imports."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ctrctl import main, parser


def _handlers(p: argparse.ArgumentParser) -> set[str]:
    found = {p.get_default("handler")} - {None, ""}
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _handlers(sub)
    return found


def test_every_verb_handler_resolves() -> None:
    handlers = _handlers(parser.build([]))
    assert len(handlers) >= 25
    for handler in handlers:
        module, _, func = handler.partition(":")
        assert callable(getattr(main._verb_module(module), func)), handler


def test_every_verb_module_named_in_the_parser_resolves() -> None:
    modules = set(re.findall(r"\"(ctrctl\.[a-z_]+)[\":]", Path(parser.__file__).read_text()))
    assert "ctrctl.cmd_run" in modules
    for module in modules:
        assert main._verb_module(module).__name__ == module
