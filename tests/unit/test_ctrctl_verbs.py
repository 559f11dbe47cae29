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


def test_interactive_flags_and_their_spec() -> None:
    from ctrctl.spec import build_spec

    argv = ["run", "-it", "--rm", "--detach-keys", "ctrl-a,x", "--sig-proxy=false", "busybox", "sh"]
    a = parser.build(argv).parse_args(argv)
    assert (a.interactive, a.tty, a.detach_keys, a.sig_proxy) == (True, True, "ctrl-a,x", False)
    s = build_spec(a, {}, detach=False)
    assert (s.tty, s.open_stdin, s.stdin_once, s.auto_remove) == (True, True, True, True)  # -it --rm: daemon removes
    argv = ["run", "-d", "-i", "busybox"]
    s = build_spec(parser.build(argv).parse_args(argv), {}, detach=True)
    assert (s.tty, s.open_stdin, s.stdin_once) == (False, True, False)  # later attaches keep stdin open
    argv = ["run", "--rm", "busybox", "true"]
    s = build_spec(parser.build(argv).parse_args(argv), {}, detach=False)
    assert (s.tty, s.open_stdin, s.auto_remove) == (False, False, False)  # plain foreground: the client removes
    argv = ["attach", "--no-stdin", "--sig-proxy", "false", "c1"]
    a = parser.build(argv).parse_args(argv)
    assert (a.no_stdin, a.sig_proxy, a.container, a.detach_keys) == (True, False, "c1", "")
    argv = ["start", "-a", "-i", "c1"]
    a = parser.build(argv).parse_args(argv)
    assert (a.attach, a.interactive, a.containers) == (True, True, ["c1"])
