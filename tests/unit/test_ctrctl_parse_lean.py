"""ctrctl registers only the verb being run (ctrctl/parser.py says why): a line parses to what
the parser with every verb gives, and a usage error is retried on that parser (ctrctl/main.py),
so it reads exactly as before."""

from __future__ import annotations

import contextlib
import io

import pytest

from ctrctl.errors import UsageError
from ctrctl.main import main
from ctrctl.parser import build

GOOD = [
    ["-a", "/s", "run", "--rm", "--network", "none", "-e", "A=1", "busybox", "true"],
    ["run", "-d", "--name", "x", "-p", "80:80", "img", "sh", "-c", "echo hi"],
    ["ps", "-a", "--format", "{{.ID}}"],
    ["inspect", "x", "y"],
    ["logs", "-f", "--tail", "10", "x"],
    ["exec", "-i", "x", "cat"],
    ["stop", "-t", "3", "x"],
    ["rm", "-f", "x"],
    ["start", "-a", "x"],
    ["version"],
    ["container", "prune", "-f"],
    ["image", "ls"],
]
BAD = [["nosuch"], ["run"], ["run", "--bogus", "img"], ["container", "ls"], ["ps", "--tail", "x"],
       ["--address"]]


@pytest.mark.parametrize("argv", GOOD, ids=lambda a: " ".join(a))
def test_only_the_verb_s_parser_parses_as_every_verb_s(argv: list[str]) -> None:
    assert vars(build(argv, every=False).parse_args(argv)) == vars(build(argv).parse_args(argv))


def _error(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


@pytest.mark.parametrize("argv", BAD, ids=lambda a: " ".join(a))
def test_usage_errors_read_as_with_every_verb_registered(argv: list[str]) -> None:
    with pytest.raises(UsageError) as full:
        build(argv).parse_args(argv)
    code, err = _error(argv)
    assert code == full.value.exit_code
    assert err.strip() == full.value.line
