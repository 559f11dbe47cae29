"""The command lines engines send `ctrd-runtime`, read without argparse.

containerd's shim and dockerd (through it) start one `ctrd-runtime` per verb and container, always
in go-runc's shape: global options, the verb, the verb's options, the id, then the verb's own
positionals (`--root R --log L --log-format json delete --force ID`, `kill ID 9`, `exec --process
P --detach --pid-file F ID`). `import argparse` (with gettext, locale, shutil and re) is ~10 ms of
such a call on this machine (hyperfine, 2026-12-06: `python3 -S -c 'import argparse'` 17.4 ms
against 7.5 ms for the bare interpreter), and a call is ~14 ms without it. `parse` reads exactly
these shapes for the lifecycle verbs and returns None for anything else — help, `--version`'s
neighbours, an abbreviation, an unknown or repeated-in-odd-form option, a bad value — which then
goes to argparse (runtime.cli_parser), so that every usage error and help text stays argparse's.
tests/unit/test_runtime_cli_parse.py checks that both give the same result for each line.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

DEFAULT_ROOT = "/run/ctrd-runtime"


class Args:
    """The parsed command line: argparse.Namespace's shape (attributes named after the options)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    if TYPE_CHECKING:
        def __getattr__(self, name: str) -> Any: ...

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Args({', '.join(f'{k}={v!r}' for k, v in sorted(vars(self).items()))})"


# option -> (dest, kind): kind "flag" (store_true), "str", "int" or "append" (a list of str).
_Opts = dict[str, tuple[str, str]]
GLOBAL: _Opts = {"--root": ("root", "str"), "--log": ("log", "str"), "--log-format": ("log_format", "str"),
                 "--debug": ("debug", "flag"), "--systemd-cgroup": ("systemd_cgroup", "flag"),
                 "--rootless": ("rootless", "str"), "--criu": ("criu", "str")}
GLOBAL_DEFAULTS: dict[str, Any] = {"root": DEFAULT_ROOT, "log": None, "log_format": "text", "debug": False,
                                   "systemd_cgroup": False, "rootless": None, "criu": None}
_CREATE: _Opts = {"--bundle": ("bundle", "str"), "-b": ("bundle", "str"), "--pid-file": ("pid_file", "str"),
                  "--console-socket": ("console_socket", "str"), "--no-pivot": ("no_pivot", "flag"),
                  "--no-new-keyring": ("no_new_keyring", "flag"), "--preserve-fds": ("preserve_fds", "int")}
_CREATE_DEFAULTS: dict[str, Any] = {"bundle": ".", "pid_file": None, "console_socket": None, "no_pivot": False,
                                    "no_new_keyring": False, "preserve_fds": 0}
_EXEC: _Opts = {"--process": ("process", "str"), "-p": ("process", "str"), "--detach": ("detach", "flag"),
                "-d": ("detach", "flag"), "--pid-file": ("pid_file", "str"),
                "--console-socket": ("console_socket", "str"), "--tty": ("tty", "flag"), "-t": ("tty", "flag"),
                "--cwd": ("cwd", "str"), "--env": ("env", "append"), "-e": ("env", "append"),
                "--user": ("user", "str"), "-u": ("user", "str"), "--no-new-privs": ("no_new_privs", "flag"),
                "--preserve-fds": ("preserve_fds", "int")}
_EXEC_DEFAULTS: dict[str, Any] = {"process": None, "detach": False, "pid_file": None, "console_socket": None,
                                  "tty": False, "cwd": None, "env": [], "user": None, "no_new_privs": False,
                                  "preserve_fds": 0}

# verb -> (its options, their defaults, the positionals after the id: "" none, "signal", "argv")
VERBS: dict[str, tuple[_Opts, dict[str, Any], str]] = {
    "create": (_CREATE, _CREATE_DEFAULTS, ""),
    "run": ({**_CREATE, "--detach": ("detach", "flag"), "-d": ("detach", "flag"), "--keep": ("keep", "flag")},
            {**_CREATE_DEFAULTS, "detach": False, "keep": False}, ""),
    "start": ({}, {}, ""),
    "state": ({}, {}, ""),
    "pause": ({}, {}, ""),
    "resume": ({}, {}, ""),
    "kill": ({"--all": ("all", "flag"), "-a": ("all", "flag")}, {"all": False}, "signal"),
    "delete": ({"--force": ("force", "flag"), "-f": ("force", "flag")}, {"force": False}, ""),
    "exec": (_EXEC, _EXEC_DEFAULTS, "argv"),
}


def _options(words: Sequence[str], i: int, opts: _Opts, into: dict[str, Any]) -> int | None:
    """Read `opts` from words[i:] into `into` up to the first positional; its index, or None when
    a word is not one of the forms read here."""
    while i < len(words) and words[i].startswith("-"):
        word = words[i]
        name, eq, inline = word.partition("=")
        if name not in opts:
            return None
        dest, kind = opts[name]
        if kind == "flag":
            if eq:
                return None
            into[dest] = True
            i += 1
            continue
        if eq:
            value, i = inline, i + 1
        elif i + 1 < len(words) and not words[i + 1].startswith("-"):
            value, i = words[i + 1], i + 2
        else:
            return None
        if kind == "int":
            if not value.isascii() or not value.lstrip("-").isdigit():
                return None
            into[dest] = int(value)
        elif kind == "append":
            into[dest] = [*into[dest], value]
        else:
            into[dest] = value
    return i


def parse(words: Sequence[str]) -> Args | None:
    """The parsed line, or None: argparse must read it."""
    values: dict[str, Any] = dict(GLOBAL_DEFAULTS)
    i = _options(words, 0, GLOBAL, values)
    if i is None or i >= len(words) or values["log_format"] not in ("text", "json") or words[i] not in VERBS:
        return None
    verb = words[i]
    opts, defaults, rest = VERBS[verb]
    values.update(verb=verb, **{k: list(v) if isinstance(v, list) else v for k, v in defaults.items()})
    j = _options(words, i + 1, opts, values)
    if j is None or j >= len(words):
        return None
    values["id"] = words[j]
    tail = list(words[j + 1:])
    if rest == "argv":  # argparse.REMAINDER: everything after the id is the command
        values["argv"] = tail
    elif rest == "signal":
        if len(tail) > 1 or any(w.startswith("-") for w in tail):
            return None
        values["signal"] = tail[0] if tail else "SIGTERM"
    elif tail:
        return None
    return Args(**values)
