"""`ctrd-runtime`'s argparse command line: every verb, help and usage errors as argparse words them.

The lifecycle verbs as engines send them are read by runtime.cli_args without argparse (it says
why); every other line comes here.
"""

from __future__ import annotations

import argparse

from runtime.cli_args import DEFAULT_ROOT, GLOBAL

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, NoReturn


class _Version(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        from runtime import version

        print(version.version_text())
        parser.exit()


# Building every verb's subparser cost ~5-10 ms per call here (20 verbs, ~60 arguments; timed
# in-process, 2026-12-06), as much as the imports the verbs need: an engine's call names its verb
# after the global options, so only that verb's parser is built. Anything else (help, an unknown
# verb or option, any usage error) is parsed again by the full parser, so that usage lines and
# error messages stay exactly argparse's over all verbs.
_GLOBAL_VALUE = frozenset(name for name, (_, kind) in GLOBAL.items() if kind != "flag")
_GLOBAL_FLAG = frozenset(name for name, (_, kind) in GLOBAL.items() if kind == "flag")


class _Retry(Exception):
    """A usage error in the one-verb parser: parse again with the full one."""


class _OneVerbParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Retry(message)


class _Sink:
    """Stands in for the subparser of a verb that is not being run: its arguments are never built."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        return None


def verb_of(argv: Sequence[str]) -> str | None:
    """The verb of a plain engine call (`--root R --log L --log-format json create ...`); "" for
    `--version` (it exits before any verb is needed); None when the line has anything else before
    the verb (help, an abbreviation, an unknown option)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--version", "-v"):
            return ""
        if a.startswith("-"):
            name = a.partition("=")[0]
            if name in _GLOBAL_VALUE:
                i += 1 if "=" in a else 2
            elif a in _GLOBAL_FLAG:
                i += 1
            else:
                return None
            continue
        return a
    return None


def parser(only: str | None = None) -> argparse.ArgumentParser:
    cls = argparse.ArgumentParser if only is None else _OneVerbParser
    p = cls(prog="ctrd-runtime", description="runc-compatible OCI runtime")
    p.add_argument("--root", default=DEFAULT_ROOT)
    p.add_argument("--log", default=None)
    p.add_argument("--log-format", default="text", choices=("text", "json"))
    p.add_argument("--debug", action="store_true")
    p.add_argument("--systemd-cgroup", action="store_true", help="accepted for runc compatibility; ignored")
    p.add_argument("--rootless", default=None, help="accepted for runc compatibility; ignored")
    p.add_argument("--criu", default=None, help=argparse.SUPPRESS)
    p.add_argument("--version", "-v", action=_Version)
    sub = p.add_subparsers(dest="verb", required=True)

    def cmd(name: str, with_id: bool = True) -> Any:
        if only is not None and name != only:
            return _Sink()
        sp = sub.add_parser(name)
        if with_id:
            sp.add_argument("id")
        return sp

    for name in ("create", "run"):
        sp = cmd(name)
        sp.add_argument("--bundle", "-b", default=".")
        sp.add_argument("--pid-file", default=None)
        sp.add_argument("--console-socket", default=None)
        sp.add_argument("--no-pivot", action="store_true")
        sp.add_argument("--no-new-keyring", action="store_true")
        sp.add_argument("--preserve-fds", type=int, default=0)
        if name == "run":
            sp.add_argument("--detach", "-d", action="store_true")
            sp.add_argument("--keep", action="store_true")
    cmd("start")
    cmd("state")
    sp = cmd("kill")
    sp.add_argument("signal", nargs="?", default="SIGTERM")
    sp.add_argument("--all", "-a", action="store_true")
    sp = cmd("delete")
    sp.add_argument("--force", "-f", action="store_true")
    sp = cmd("list", with_id=False)
    sp.add_argument("--format", "-f", default="table", choices=("table", "json"))
    sp.add_argument("--quiet", "-q", action="store_true")
    cmd("pause")
    cmd("resume")
    sp = cmd("exec")
    sp.add_argument("--process", "-p", default=None)
    sp.add_argument("--detach", "-d", action="store_true")
    sp.add_argument("--pid-file", default=None)
    sp.add_argument("--console-socket", default=None)
    sp.add_argument("--tty", "-t", action="store_true")
    sp.add_argument("--cwd", default=None)
    sp.add_argument("--env", "-e", action="append", default=[])
    sp.add_argument("--user", "-u", default=None)
    sp.add_argument("--no-new-privs", action="store_true")
    sp.add_argument("--preserve-fds", type=int, default=0)
    sp.add_argument("argv", nargs=argparse.REMAINDER)
    sp = cmd("update")
    sp.add_argument("--resources", "-r", default=None)
    sp.add_argument("--memory", type=int, default=None)
    sp.add_argument("--pids-limit", type=int, default=None)
    sp.add_argument("--cpu-shares", type=int, default=None)
    sp.add_argument("--cpu-quota", type=int, default=None)
    sp.add_argument("--cpu-period", type=int, default=None)
    sp.add_argument("--cpuset-cpus", default=None)
    sp.add_argument("--cpuset-mems", default=None)
    sp.add_argument("--blkio-weight", type=int, default=None)
    sp = cmd("ps")
    sp.add_argument("--format", "-f", default="table", choices=("table", "json"))
    sp.add_argument("ps_args", nargs=argparse.REMAINDER)
    sp = cmd("events")
    sp.add_argument("--stats", action="store_true", help="display the container's stats then exit")
    sp.add_argument("--interval", default="5s", help="the stats collection interval (a duration: 5s, 500ms)")
    cmd("features", with_id=False)
    for name in ("checkpoint", "restore"):
        sp = cmd(name, with_id=False)
        sp.add_argument("rest", nargs=argparse.REMAINDER)  # runc's options and the id: all refused alike
    sp = cmd("spec", with_id=False)
    sp.add_argument("--bundle", "-b", default=".")
    sp.add_argument("--rootless", action="store_true")
    return p


def parse(words: Sequence[str]) -> argparse.Namespace:
    """argparse's reading of `words`; a usage error, help or --version exits as argparse does."""
    verb = verb_of(words)
    if verb is not None:  # "" (--version): a parser with no verb at all
        try:
            args, extra = parser(verb).parse_known_args(words)
            if not extra or args.verb in ("checkpoint", "restore"):
                return args
        except _Retry:
            pass
    full = parser()
    args, extra = full.parse_known_args(words)
    if extra and args.verb not in ("checkpoint", "restore"):
        full.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


