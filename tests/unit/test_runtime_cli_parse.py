"""`ctrd-runtime` reads the engines' lines without argparse (runtime/cli_args.py) and builds only
the called verb's argparse parser for the rest (runtime/cli_parser.py): every line must parse to
what the full parser gives, and every usage error must read exactly as the full parser's."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from runtime import cli, cli_args, cli_parser

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
    # go-runc's shapes, as containerd's shim (and dockerd through it) sends them
    ["--root", "/run/containerd/runc/ns", "--log", "/s/log.json", "--log-format", "json", "create", "--bundle", "/s",
     "--pid-file", "/s/init.pid", "--console-socket", "/tmp/pty.sock", "c1"],
    ["--root", "/r", "--log", "/l", "--log-format", "json", "start", "c1"],
    ["--root", "/r", "--log", "/l", "--log-format", "json", "delete", "c1"],
    ["--root", "/r", "--log", "/l", "--log-format", "json", "delete", "--force", "c1"],
    ["--root", "/r", "--log", "/l", "--log-format", "json", "kill", "c1", "9"],
    ["--root", "/r", "--log", "/l", "--log-format", "json", "kill", "--all", "c1", "15"],
    ["--root", "/r", "--log", "/l", "--log-format", "json", "exec", "--process", "/tmp/p.json", "--detach",
     "--pid-file", "/s/e.pid", "c1"],
    ["--root", "/r", "resume", "c1"],
    ["create", "--preserve-fds=3", "--no-pivot", "--no-new-keyring", "--bundle=", "c1"],
    ["exec", "-e", "A=1", "c1"],
    ["exec", "c1", "--cwd", "/", "ls"],                 # after the id everything is the command
    ["--log-format=text", "run", "--keep", "-d", "c1"],
]
# Lines the hand reader must take (the engines' shapes): it never hands those to argparse.
FAST = [a for a in GOOD if a and cli_parser.verb_of(a) in cli_args.VERBS and "-h" not in a
        and "--ro" not in a]

BAD = [
    ["state"],                                  # missing id
    ["state", "a", "b"],                        # unrecognized arguments
    ["--log-format", "xml", "state", "c1"],     # invalid choice at the top
    ["kill"],
    ["create", "--preserve-fds", "x", "c1"],    # type error in the subparser
    ["nosuchverb", "c1"],
    ["--ro", "/r", "state", "c1"],              # an abbreviation: the full parser decides
    [],
    ["kill", "c1", "9", "x"],                   # too many positionals
    ["delete", "--force=1", "c1"],              # a value for a flag
    ["start", "--bundle", "/b", "c1"],          # another verb's option
    ["create", "--bundle"],                     # an option without its value
    ["create", "--bundle", "--pid-file", "c1"],  # a value that looks like an option
    ["--log-format", "json"],                   # no verb
    ["delete", "--root", "/r", "c1"],           # a global option after the verb
]
# Lines argparse accepts in forms the hand reader leaves to it.
OTHER = [
    ["kill", "c1", "-9"],                       # a negative-number-looking positional
    ["create", "--preserve-fds", "+3", "c1"],   # int("+3")
    ["create", "-b/b", "c1"],                   # a short option with its value attached
    ["--root", "/a", "--root", "/b", "delete", "c1"],
]


def _full(argv: list[str]) -> argparse.Namespace:
    args, extra = cli_parser.parser().parse_known_args(argv)
    if extra and args.verb not in ("checkpoint", "restore"):
        raise AssertionError(f"unexpected extra {extra}")
    return args


@pytest.mark.parametrize("argv", GOOD, ids=lambda a: " ".join(a))
def test_the_one_verb_parser_parses_as_the_full_one(argv: list[str]) -> None:
    assert cli_parser.verb_of(argv)  # these lines do take the one-verb path
    assert vars(cli_parser.parse(argv)) == vars(_full(argv))


@pytest.mark.parametrize("argv", FAST, ids=lambda a: " ".join(a))
def test_the_hand_reader_parses_the_engines_lines_as_the_full_parser(argv: list[str]) -> None:
    got = cli_args.parse(argv)
    assert got is not None, "an engine's line went to argparse"
    assert vars(got) == vars(_full(argv))
    assert vars(cli.parse(argv)) == vars(_full(argv))


def test_the_lifecycle_lines_are_most_of_the_list() -> None:
    assert {a[a.index(v)] for a in FAST for v in cli_args.VERBS if v in a} >= {"create", "start", "delete",
                                                                                "kill", "exec", "state"}


@pytest.mark.parametrize("argv", BAD, ids=lambda a: " ".join(a) or "(nothing)")
def test_the_hand_reader_leaves_every_usage_error_to_argparse(argv: list[str]) -> None:
    assert cli_args.parse(argv) is None


@pytest.mark.parametrize("argv", OTHER, ids=lambda a: " ".join(a))
def test_lines_in_other_forms_parse_as_argparse_reads_them(argv: list[str]) -> None:
    got = cli_args.parse(argv)
    assert got is None or vars(got) == vars(_full(argv))
    assert vars(cli.parse(argv)) == vars(_full(argv))


def _outcome(fn: object, argv: list[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        fn(argv)  # type: ignore[operator]
    return exc.value.code, out.getvalue(), err.getvalue()


def _full_with_extra_check(argv: list[str]) -> None:
    parser = cli_parser.parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.verb not in ("checkpoint", "restore"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")


@pytest.mark.parametrize("argv", BAD, ids=lambda a: " ".join(a) or "(nothing)")
def test_usage_errors_read_exactly_as_the_full_parser_s(argv: list[str]) -> None:
    got = _outcome(cli.parse, argv)
    assert got[0] == 2 and got[2]
    assert got == _outcome(_full_with_extra_check, argv)


@pytest.mark.parametrize("argv", [["--version"], ["-v"], ["state", "-h"], ["-h"], ["--root", "/r", "--version"]])
def test_version_and_help_print_what_the_full_parser_prints(argv: list[str]) -> None:
    assert _outcome(cli.parse, argv) == _outcome(_full_with_extra_check, argv)


@pytest.mark.parametrize("argv", [["--version"], ["-v"]])
def test_main_answers_version_itself_as_the_parser_would(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 0
    mine = capsys.readouterr().out
    assert _outcome(_full_with_extra_check, argv) == (0, mine, "")
