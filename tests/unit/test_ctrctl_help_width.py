"""ctrctl's parsers lay out help at the width argparse would pick, without asking shutil for it
(ctrctl/parser.py `_formatter` says why): the same columns as shutil.get_terminal_size, and the same
help and usage text as argparse's own formatter."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import os
import pty
import shutil
import struct
import sys
import termios

import pytest

from ctrctl import parser as parser_mod
from ctrctl.errors import UsageError
from ctrctl.main import main


@pytest.mark.parametrize("columns", [None, "123", "0", "-5", "wide", ""])
def test_columns_follow_shutil_s_rules(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert parser_mod.terminal_columns() == shutil.get_terminal_size().columns


@pytest.mark.parametrize("columns", [None, "0", "97"])
def test_columns_of_a_terminal_on_stdout(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 141, 0, 0))
        with open(slave, "w", closefd=False) as term:
            monkeypatch.setattr(sys, "__stdout__", term)
            if columns is None:
                monkeypatch.delenv("COLUMNS", raising=False)
            else:
                monkeypatch.setenv("COLUMNS", columns)
            want = shutil.get_terminal_size().columns
            assert want == (97 if columns == "97" else 141)
            assert parser_mod.terminal_columns() == want
    finally:
        os.close(master)
        os.close(slave)


def test_no_stdout_is_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys, "__stdout__", None)
    assert parser_mod.terminal_columns() == shutil.get_terminal_size().columns == 80


def _help(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    return out.getvalue()


HELP = [["--help"], ["run", "--help"], ["ps", "--help"], ["image", "--help"], ["image", "ls", "--help"],
        ["network", "create", "--help"], ["system", "prune", "--help"]]


@pytest.mark.parametrize("columns", ["50", "100", "211"])
@pytest.mark.parametrize("argv", HELP, ids=lambda a: " ".join(a))
def test_help_reads_as_with_argparse_s_own_formatter(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                                     columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    ours = _help(argv)
    monkeypatch.setattr(parser_mod, "_formatter", argparse.HelpFormatter)
    assert ours == _help(argv)


@pytest.mark.parametrize("argv", [["run"], ["ps", "--bogus"], ["nosuch"], ["image", "rm"]], ids=lambda a: " ".join(a))
def test_usage_errors_read_as_with_argparse_s_own_formatter(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    monkeypatch.setenv("COLUMNS", "64")

    def error_and_usage() -> tuple[str, str]:
        p = parser_mod.build(argv)
        with pytest.raises(UsageError) as error:
            p.parse_args(argv)
        return error.value.line, p.format_usage()

    ours = error_and_usage()
    monkeypatch.setattr(parser_mod, "_formatter", argparse.HelpFormatter)
    assert ours == error_and_usage()


def test_building_a_parser_does_not_import_shutil() -> None:
    import subprocess

    code = ("import sys\nfrom ctrctl.parser import build\n"
            "a = ['run', '--rm', 'img', 'true']\nbuild(a, every=False).parse_args(a)\n"
            "print('shutil' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False"]


def _every_help() -> dict[str, str]:
    """Every verb's help and usage, from the parser with every flag (as completion walks it)."""
    out: dict[str, str] = {}

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        out[path] = p.format_help() + p.format_usage()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")

    walk(parser_mod.build(full=True), "ctrctl")
    return out


@pytest.mark.parametrize("columns", ["40", "120"])
def test_every_verb_s_help_reads_as_with_argparse_s_own_formatter(monkeypatch: pytest.MonkeyPatch,
                                                                  columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    ours = _every_help()
    monkeypatch.setattr(parser_mod, "_formatter", argparse.HelpFormatter)
    theirs = _every_help()
    assert len(ours) > 70 and ours == theirs
