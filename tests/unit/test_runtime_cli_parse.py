"""`ctrd-runtime` builds only the called verb's parser (runtime/cli.py says why): every line must
parse to what the full parser gives, and every usage error must read exactly as the full parser's."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from runtime import cli

GOOD = [
    ["--root", "/r", "--log", "/l.json", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/p", "c1"],
    ["--root=/r", "--log-format=json", "--systemd-cgroup", "start", "c1"],
    ["--debug", "state", "c1"],
    ["kill", "c1", "KILL"],
    ["kill", "--all", "c1", "9"],
    ["delete", "-f", "c1"],
    ["run", "-d", "--keep", "-b", "/b", "c1"],
    ["exec", "-p", "/proc.json", "--pid-file", "/p", "-d", "c1"],
    ["exec", "-t", "-e", "A=1", "-e", "B=2", "c1", "sh", "-c", "echo hi"],
    ["update", "--memory", "1048576", "--pids-limit", "10", "c1"],
    ["ps", "c1", "--", "-ef"],
    ["events", "--stats", "c1"],
    ["list", "-q"],
    ["features"],
    ["checkpoint", "--image-path", "/x", "c1"],
    ["spec", "-b", "/b"],
    ["--rootless", "false", "--criu", "criu", "pause", "c1"],
]

BAD = [
    ["state"],                                  # missing id
    ["state", "a", "b"],                        # unrecognized arguments
    ["--log-format", "xml", "state", "c1"],     # invalid choice at the top
    ["kill"],
    ["create", "--preserve-fds", "x", "c1"],    # type error in the subparser
    ["nosuchverb", "c1"],
    ["--ro", "/r", "state", "c1"],              # an abbreviation: the full parser decides
    [],
]


def _full(argv: list[str]) -> argparse.Namespace:
    args, extra = cli._parser().parse_known_args(argv)
    if extra and args.verb not in ("checkpoint", "restore"):
        raise AssertionError(f"unexpected extra {extra}")
    return args


@pytest.mark.parametrize("argv", GOOD, ids=lambda a: " ".join(a))
def test_the_one_verb_parser_parses_as_the_full_one(argv: list[str]) -> None:
    assert cli._verb_of(argv)  # these lines do take the one-verb path
    assert vars(cli._parse(argv)) == vars(_full(argv))


def _outcome(fn: object, argv: list[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        fn(argv)  # type: ignore[operator]
    return exc.value.code, out.getvalue(), err.getvalue()


def _full_with_extra_check(argv: list[str]) -> None:
    parser = cli._parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.verb not in ("checkpoint", "restore"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")


@pytest.mark.parametrize("argv", BAD, ids=lambda a: " ".join(a) or "(nothing)")
def test_usage_errors_read_exactly_as_the_full_parser_s(argv: list[str]) -> None:
    got = _outcome(cli._parse, argv)
    assert got[0] == 2 and got[2]
    assert got == _outcome(_full_with_extra_check, argv)


@pytest.mark.parametrize("argv", [["--version"], ["-v"], ["state", "-h"], ["-h"]])
def test_version_and_help_print_what_the_full_parser_prints(argv: list[str]) -> None:
    assert _outcome(cli._parse, argv) == _outcome(_full_with_extra_check, argv)
