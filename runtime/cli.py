"""`ctrd-runtime`: a runc-compatible command line over the runtime library.

    ctrd-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...

Errors: one line on stderr (and, with --log-format json, a runc-style
{"level":"error","msg":...,"time":...} line in --log), exit status 1 (255 for `exec`, like runc).
The JSON line also carries the error's machine-readable `code` (an errdefs code string:
"not_found", "invalid_argument", ...) and, when it has one, its `reason` (one of ctrd.reasons), so
that a caller driving this binary (the shim's OCI-binary backend) need not match message text.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from runtime import errors

# Each verb imports the library parts it uses: containerd and dockerd start one `ctrd-runtime`
# per verb (create, start, state, kill, delete for every container), and `state`/`kill`/`delete`
# need only the state file and the cgroup, not the spec parser, the create/init machinery or the
# ctypes syscalls. Measured here (clean interpreter without the sandbox's certifi .pth, .pyc
# compiled, 2026-12-06, load ~4.7, A/B interleaved, p50): `ctrd-runtime state <id>` 102 -> 42 ms,
# `--version` 154 -> 40 ms, `run` of a bundle 139 -> 89 ms, with `python -c pass` 12 ms and runc
# 6 / 6 / 40 ms in the same run; the project's own modules are now ~3 ms of `state`'s imports.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

    from runtime.container import Container, Stdio

DEFAULT_ROOT = "/run/ctrd-runtime"
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
              signal.SIGWINCH)


class _Log:
    def __init__(self, path: str | None, fmt: str) -> None:
        self.path = path
        self.fmt = fmt

    def error(self, msg: str, code: str = "internal", reason: str = "") -> None:
        print(f"ctrd-runtime: {msg}", file=sys.stderr)
        if not self.path:
            return
        line = self.line(msg, code, reason)
        try:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass

    def warning(self, msg: str) -> None:
        print(f"ctrd-runtime: warning: {msg}", file=sys.stderr)
        if self.path:
            try:
                with open(self.path, "a") as f:
                    f.write(self.line(msg, "", "", level="warning") + "\n")
            except OSError:
                pass

    def line(self, msg: str, code: str, reason: str, level: str = "error") -> str:
        from ctrd import timefmt

        now = timefmt.now()
        if self.fmt != "json":
            return f'time="{now}" level={level} msg="{msg}"'
        record = {"level": level, "msg": msg, "time": now}
        if code:
            record["code"] = code
        if reason:
            record["reason"] = reason
        return json.dumps(record)


def _write_pid_file(path: str | None, pid: int) -> None:
    if not path:
        return
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _state_json(c: Container) -> dict[str, Any]:
    from runtime.container import Status

    st = c.state()
    status = c.status()
    return {
        "ociVersion": "1.0.2",
        "id": c.id,
        "pid": 0 if status is Status.STOPPED else c.pid,
        "status": status.value,
        "bundle": c.bundle,
        "rootfs": c.rootfs,
        "created": st.created,
        "owner": st.owner,
        "annotations": st.annotations,
    }


def _console(console_socket: str | None, terminal: bool) -> tuple[Stdio, socket.socket | None]:
    """With process.terminal, connect to --console-socket: the container's process makes its pty
    from the container's devpts and sends the master there itself (runtime.console), as runc."""
    import socket

    from runtime.container import Stdio

    if not terminal:
        return Stdio(0, 1, 2), None
    if not console_socket:
        raise errors.SpecError("process.terminal", "needs --console-socket")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(console_socket)
    except OSError as exc:
        s.close()
        raise errors.RuntimeErr(f"console socket {console_socket}: {(exc.strerror or str(exc)).lower()}")
    return Stdio(0, 1, 2, console=s.fileno()), s


def _wait_forwarding(pid: int) -> int:
    """Wait for our child `pid`, forwarding terminating signals to it; return a shell-style code."""
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


# -- commands ------------------------------------------------------------------------------------

def cmd_create(a: argparse.Namespace) -> int:
    from runtime import spec as spec_mod
    from runtime.container import Container

    spec = spec_mod.load(a.bundle)
    stdio, console = _console(a.console_socket, spec.process.terminal)
    try:
        c = Container._create(a.bundle, a.id, stdio, state_dir=a.root, fifo=True)
    finally:
        if console is not None:
            console.close()
    _write_pid_file(a.pid_file, c.pid)
    return 0


def cmd_start(a: argparse.Namespace) -> int:
    from runtime.container import Container

    Container.load(a.id, state_dir=a.root).start()
    return 0


def cmd_run(a: argparse.Namespace) -> int:
    from runtime import spec as spec_mod
    from runtime.container import Container

    spec = spec_mod.load(a.bundle)
    stdio, console = _console(a.console_socket, spec.process.terminal)
    try:
        c = Container.create(a.bundle, a.id, stdio, state_dir=a.root)
    finally:
        if console is not None:
            console.close()
    _write_pid_file(a.pid_file, c.pid)
    try:
        c.start()
    except errors.RuntimeErr:
        c.delete()
        raise
    if a.detach:
        return 0
    code = _wait_forwarding(c.pid)
    if not a.keep:
        c.delete()
    return code


def cmd_state(a: argparse.Namespace) -> int:
    from runtime.container import Container

    print(json.dumps(_state_json(Container.load(a.id, state_dir=a.root)), indent=2))
    return 0


def cmd_kill(a: argparse.Namespace) -> int:
    from ctrd import signals
    from runtime.container import Container

    sig = signals.parse(a.signal)  # ValueError: a bad signal is bad input, whatever the container
    Container.load(a.id, state_dir=a.root).kill(sig, all=a.all)
    return 0


def cmd_delete(a: argparse.Namespace) -> int:
    from runtime.container import Container, Status

    try:
        c = Container.load(a.id, state_dir=a.root)
    except errors.ContainerNotFound:
        if a.force:
            return 0
        raise
    st = c.status()
    if st in (Status.RUNNING, Status.PAUSED) and not a.force:
        raise errors.IncorrectStatus(f"cannot delete container {a.id} that is {st.value}: use --force")
    c.delete()
    for w in c.hook_warnings:
        _Log(a.log, a.log_format).warning(w)
    return 0


def cmd_list(a: argparse.Namespace) -> int:
    from runtime import state as state_mod
    from runtime.container import Container

    rows = []
    for cid in state_mod.list_ids(a.root):
        try:
            rows.append(_state_json(Container.load(cid, state_dir=a.root)))
        except errors.RuntimeErr:
            continue
    if a.quiet:
        print("\n".join(r["id"] for r in rows))
    elif a.format == "json":
        print(json.dumps(rows))
    else:
        print(f"{'ID':<20}{'PID':<10}{'STATUS':<10}{'BUNDLE':<40}{'CREATED':<32}OWNER")
        for r in rows:
            print(f"{r['id']:<20}{r['pid']:<10}{r['status']:<10}{r['bundle']:<40}{r['created']:<32}{r['owner']}")
    return 0


def cmd_pause(a: argparse.Namespace) -> int:
    from runtime.container import Container

    Container.load(a.id, state_dir=a.root).pause()
    return 0


def cmd_resume(a: argparse.Namespace) -> int:
    from runtime.container import Container

    Container.load(a.id, state_dir=a.root).resume()
    return 0


def cmd_exec(a: argparse.Namespace) -> int:
    from runtime import spec as spec_mod
    from runtime.container import Container
    from runtime.spec_process import ProcessSpec

    c = Container.load(a.id, state_dir=a.root)
    if a.process:
        try:
            with open(a.process) as f:
                raw = json.load(f)
        except (OSError, ValueError) as exc:
            raise errors.SpecError("process", f"cannot read {a.process}: {exc}")
        process = ProcessSpec.from_oci(raw)
    else:
        base = spec_mod.load(c.bundle).process
        obj: dict[str, Any] = {
            "args": a.argv, "env": list(base.env) + list(a.env), "cwd": a.cwd or base.cwd,
            "user": {"uid": base.uid, "gid": base.gid, "additionalGids": list(base.additional_gids)},
            "noNewPrivileges": base.no_new_privileges or a.no_new_privs, "terminal": a.tty,
        }
        if a.user:
            uid, _, gid = a.user.partition(":")
            obj["user"] = {"uid": int(uid), "gid": int(gid or 0)}
        if base.capabilities is not None:
            b = base.capabilities
            obj["capabilities"] = {"bounding": list(b.bounding), "effective": list(b.effective),
                                   "permitted": list(b.permitted), "inheritable": list(b.inheritable),
                                   "ambient": list(b.ambient)}
        process = ProcessSpec.from_oci(obj)
    stdio, console = _console(a.console_socket, process.terminal)
    try:
        pid = c.exec(process, stdio)
    finally:
        if console is not None:
            console.close()
    _write_pid_file(a.pid_file, pid)
    if a.detach:
        return 0
    return _wait_forwarding(pid)


# The less used verbs live in cli_verbs, imported when one of them runs (it brings subprocess,
# the stats and defaults modules): the verbs an engine calls per container do not pay for it.
# `--version` (dockerd's `docker info` runs it) has its own small module, runtime.version.
class _Version(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        from runtime import version

        print(version.version_text())
        parser.exit()


def _cmd_update(args: argparse.Namespace) -> int:
    from runtime import cli_verbs

    return cli_verbs.cmd_update(args)


def _cmd_ps(args: argparse.Namespace) -> int:
    from runtime import cli_verbs

    return cli_verbs.cmd_ps(args)


def _cmd_events(args: argparse.Namespace) -> int:
    from runtime import cli_verbs

    return cli_verbs.cmd_events(args)


def _cmd_features(args: argparse.Namespace) -> int:
    from runtime import cli_verbs

    return cli_verbs.cmd_features(args)


def _cmd_no_criu(args: argparse.Namespace) -> int:
    from runtime import cli_verbs

    return cli_verbs.cmd_no_criu(args)


def _cmd_spec(args: argparse.Namespace) -> int:
    from runtime import cli_verbs

    return cli_verbs.cmd_spec(args)


# Building every verb's subparser cost ~5-10 ms per call here (20 verbs, ~60 arguments; timed
# in-process, 2026-12-06), as much as the imports the verbs need: an engine's call names its verb
# after the global options, so only that verb's parser is built. Anything else (help, an unknown
# verb or option, any usage error) is parsed again by the full parser, so that usage lines and
# error messages stay exactly argparse's over all verbs.
_GLOBAL_VALUE = frozenset(("--root", "--log", "--log-format", "--rootless", "--criu"))
_GLOBAL_FLAG = frozenset(("--debug", "--systemd-cgroup"))


class _Retry(Exception):
    """A usage error in the one-verb parser: parse again with the full one."""


class _OneVerbParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Retry(message)


class _Sink:
    """Stands in for the subparser of a verb that is not being run: its arguments are never built."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        return None


def _verb_of(argv: Sequence[str]) -> str | None:
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


def _parser(only: str | None = None) -> argparse.ArgumentParser:
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

    def cmd(name: str, fn: Callable[[argparse.Namespace], int], with_id: bool = True) -> Any:
        if only is not None and name != only:
            return _Sink()
        sp = sub.add_parser(name)
        sp.set_defaults(fn=fn)
        if with_id:
            sp.add_argument("id")
        return sp

    for name, fn in (("create", cmd_create), ("run", cmd_run)):
        sp = cmd(name, fn)
        sp.add_argument("--bundle", "-b", default=".")
        sp.add_argument("--pid-file", default=None)
        sp.add_argument("--console-socket", default=None)
        sp.add_argument("--no-pivot", action="store_true")
        sp.add_argument("--no-new-keyring", action="store_true")
        sp.add_argument("--preserve-fds", type=int, default=0)
        if name == "run":
            sp.add_argument("--detach", "-d", action="store_true")
            sp.add_argument("--keep", action="store_true")
    cmd("start", cmd_start)
    cmd("state", cmd_state)
    sp = cmd("kill", cmd_kill)
    sp.add_argument("signal", nargs="?", default="SIGTERM")
    sp.add_argument("--all", "-a", action="store_true")
    sp = cmd("delete", cmd_delete)
    sp.add_argument("--force", "-f", action="store_true")
    sp = cmd("list", cmd_list, with_id=False)
    sp.add_argument("--format", "-f", default="table", choices=("table", "json"))
    sp.add_argument("--quiet", "-q", action="store_true")
    cmd("pause", cmd_pause)
    cmd("resume", cmd_resume)
    sp = cmd("exec", cmd_exec)
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
    sp = cmd("update", _cmd_update)
    sp.add_argument("--resources", "-r", default=None)
    sp.add_argument("--memory", type=int, default=None)
    sp.add_argument("--pids-limit", type=int, default=None)
    sp.add_argument("--cpu-shares", type=int, default=None)
    sp.add_argument("--cpu-quota", type=int, default=None)
    sp.add_argument("--cpu-period", type=int, default=None)
    sp.add_argument("--cpuset-cpus", default=None)
    sp.add_argument("--cpuset-mems", default=None)
    sp.add_argument("--blkio-weight", type=int, default=None)
    sp = cmd("ps", _cmd_ps)
    sp.add_argument("--format", "-f", default="table", choices=("table", "json"))
    sp.add_argument("ps_args", nargs=argparse.REMAINDER)
    sp = cmd("events", _cmd_events)
    sp.add_argument("--stats", action="store_true", help="display the container's stats then exit")
    sp.add_argument("--interval", default="5s", help="the stats collection interval (a duration: 5s, 500ms)")
    cmd("features", _cmd_features, with_id=False)
    for name in ("checkpoint", "restore"):
        sp = cmd(name, _cmd_no_criu, with_id=False)
        sp.add_argument("rest", nargs=argparse.REMAINDER)  # runc's options and the id: all refused alike
    sp = cmd("spec", _cmd_spec, with_id=False)
    sp.add_argument("--bundle", "-b", default=".")
    sp.add_argument("--rootless", action="store_true")
    return p


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    words = sys.argv[1:] if argv is None else list(argv)
    verb = _verb_of(words)
    if verb is not None:  # "" (--version): a parser with no verb at all
        try:
            args, extra = _parser(verb).parse_known_args(words)
            if not extra or args.verb in ("checkpoint", "restore"):
                return args
        except _Retry:
            pass
    parser = _parser()
    args, extra = parser.parse_known_args(words)
    if extra and args.verb not in ("checkpoint", "restore"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    log = _Log(args.log, args.log_format)
    try:
        code: int = args.fn(args)
        return code
    except errors.RuntimeErr as exc:
        log.error(exc.message, exc.code, exc.reason)
        return 255 if args.verb == "exec" else 1
    except OSError as exc:
        log.error(f"{(exc.strerror or str(exc)).lower()}" + (f": {exc.filename}" if exc.filename else ""), "internal")
        return 255 if args.verb == "exec" else 1
    except ValueError as exc:
        log.error(f"invalid argument: {exc}", "invalid_argument")
        return 255 if args.verb == "exec" else 1


if __name__ == "__main__":
    sys.exit(main())
