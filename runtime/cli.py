"""`ctrd-runtime`: a runc-compatible command line over the runtime library.

    ctrd-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...

Errors: one line on stderr (and, with --log-format json, a runc-style
{"level":"error","msg":...,"time":...} line in --log), exit status 1 (255 for `exec`, like runc).
The JSON line also carries the error's machine-readable `code` (an errdefs code string:
"not_found", "invalid_argument", ...) and, when it has one, its `reason` (one of ctrd.reasons), so
that a caller driving this binary (the shim's OCI-binary backend) need not match message text.
"""

from __future__ import annotations

import os
import sys

from runtime import cli_args, errors

# Each verb imports the library parts it uses: containerd and dockerd start one `ctrd-runtime`
# per verb (create, start, state, kill, delete for every container), and `state`/`kill`/`delete`
# need only the state file and the cgroup, not the spec parser, the create/init machinery or the
# ctypes syscalls. Measured here (clean interpreter without the sandbox's certifi .pth, .pyc
# compiled, 2026-12-06, load ~4.7, A/B interleaved, p50): `ctrd-runtime state <id>` 102 -> 42 ms,
# `--version` 154 -> 40 ms, `run` of a bundle 139 -> 89 ms, with `python -c pass` 12 ms and runc
# 6 / 6 / 40 ms in the same run; the project's own modules are now ~3 ms of `state`'s imports.
# Then the standard modules those verbs paid for without needing them went too: argparse
# (runtime.cli_args reads the engines' lines), json (runtime.fastjson), enum and signal
# (runtime.container), re (ctrd.ids). hyperfine, same machine, 2026-12-06: `start` of a created
# container, `delete`, `state <missing>` each ~27 -> ~14 ms through the installed launcher
# (bare `python3 -S -c pass` 7.5 ms, runc ~5 ms).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Sequence
    from typing import Any

    from runtime import cgwarm
    from runtime.cli_args import Args
    from runtime.container import Container, Stdio

DEFAULT_ROOT = cli_args.DEFAULT_ROOT
_PLACING = ("create", "run", "exec")  # the verbs that put a process into the container's cgroups
# ... by writing its pid to cgroup.procs: on v1 hierarchies a created init places itself without
# the lock the warm-up warms (runtime/create.py), and a cold warm-up there would hold the kernel's
# cgroup_mutex through its grace period while the init's cgroups are made: only exec, there.
_warmer: cgwarm.Warmer | None = None  # runtime.cgwarm: running from the verb's start until _placed()


def _placed() -> None:
    """The verb's process is in its cgroups: the migration lock needs no more warming."""
    global _warmer
    if _warmer is not None:
        _warmer.stop()
        _warmer = None


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
        from runtime import fastjson

        return fastjson.dumps(record)


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
        "pid": 0 if status == Status.STOPPED else c.pid,
        "status": status,
        "bundle": c.bundle,
        "rootfs": c.rootfs,
        "created": st.created,
        "owner": st.owner,
        "annotations": st.annotations,
    }


def _console(console_socket: str | None, terminal: bool) -> tuple[Stdio, socket.socket | None]:
    """With process.terminal, connect to --console-socket: the container's process makes its pty
    from the container's devpts and sends the master there itself (runtime.console), as runc."""
    from runtime.container import Stdio

    if not terminal:
        return Stdio(0, 1, 2), None
    import socket  # only here: the module wraps its constants in enums (runtime.sigs says why)

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
    from runtime import sigs

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in sigs.FORWARDED:
        sigs.handle(sig, forward)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


# -- commands ------------------------------------------------------------------------------------

def cmd_create(a: Args) -> int:
    from runtime import spec as spec_mod
    from runtime.container import Container

    spec = spec_mod.load(a.bundle)
    stdio, console = _console(a.console_socket, spec.process.terminal)
    try:
        c = Container._create(a.bundle, a.id, stdio, state_dir=a.root, fifo=True)
    finally:
        _placed()
        if console is not None:
            console.close()
    _write_pid_file(a.pid_file, c.pid)
    return 0


def cmd_start(a: Args) -> int:
    from runtime.container import Container

    Container.load(a.id, state_dir=a.root).start()
    return 0


def cmd_run(a: Args) -> int:
    from runtime import spec as spec_mod
    from runtime.container import Container

    spec = spec_mod.load(a.bundle)
    stdio, console = _console(a.console_socket, spec.process.terminal)
    try:
        c = Container.create(a.bundle, a.id, stdio, state_dir=a.root)
    finally:
        _placed()
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


def cmd_state(a: Args) -> int:
    from runtime.container import Container

    doc = _state_json(Container.load(a.id, state_dir=a.root))
    import json  # for runc's indented output, once there is one to print

    print(json.dumps(doc, indent=2))
    return 0


def cmd_kill(a: Args) -> int:
    from ctrd import signals
    from runtime.container import Container

    sig = signals.parse(a.signal)  # ValueError: a bad signal is bad input, whatever the container
    Container.load(a.id, state_dir=a.root).kill(sig, all=a.all)
    return 0


def cmd_delete(a: Args) -> int:
    from runtime.container import Container, Status

    try:
        c = Container.load(a.id, state_dir=a.root)
    except errors.ContainerNotFound:
        if a.force:
            return 0
        raise
    st = c.status()
    if st in (Status.RUNNING, Status.PAUSED) and not a.force:
        raise errors.IncorrectStatus(f"cannot delete container {a.id} that is {st}: use --force")
    c.delete()
    for w in c.hook_warnings:
        _Log(a.log, a.log_format).warning(w)
    return 0


def cmd_list(a: Args) -> int:
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
        from runtime import fastjson

        print(fastjson.dumps(rows))
    else:
        print(f"{'ID':<20}{'PID':<10}{'STATUS':<10}{'BUNDLE':<40}{'CREATED':<32}OWNER")
        for r in rows:
            print(f"{r['id']:<20}{r['pid']:<10}{r['status']:<10}{r['bundle']:<40}{r['created']:<32}{r['owner']}")
    return 0


def cmd_pause(a: Args) -> int:
    from runtime.container import Container

    Container.load(a.id, state_dir=a.root).pause()
    return 0


def cmd_resume(a: Args) -> int:
    from runtime.container import Container

    Container.load(a.id, state_dir=a.root).resume()
    return 0


def cmd_exec(a: Args) -> int:
    from runtime import spec as spec_mod
    from runtime.container import Container
    from runtime.spec_process import ProcessSpec

    c = Container.load(a.id, state_dir=a.root)
    if a.process:
        from runtime import fastjson

        try:
            with open(a.process) as f:
                raw = fastjson.loads(f.read())
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
        _placed()
        if console is not None:
            console.close()
    _write_pid_file(a.pid_file, pid)
    if a.detach:
        return 0
    return _wait_forwarding(pid)


# The less used verbs live in cli_verbs, imported when one of them runs (it brings subprocess,
# the stats and defaults modules): the verbs an engine calls per container do not pay for it.
# `--version` (dockerd's `docker info` runs it) has its own small module, runtime.version.
def _cmd_update(args: Args) -> int:
    from runtime import cli_verbs

    return cli_verbs.cmd_update(args)


def _cmd_ps(args: Args) -> int:
    from runtime import cli_verbs

    return cli_verbs.cmd_ps(args)


def _cmd_events(args: Args) -> int:
    from runtime import cli_verbs

    return cli_verbs.cmd_events(args)


def _cmd_features(args: Args) -> int:
    from runtime import cli_verbs

    return cli_verbs.cmd_features(args)


def _cmd_no_criu(args: Args) -> int:
    from runtime import cli_verbs

    return cli_verbs.cmd_no_criu(args)


def _cmd_spec(args: Args) -> int:
    from runtime import cli_verbs

    return cli_verbs.cmd_spec(args)


COMMANDS: dict[str, Callable[[Args], int]] = {
    "create": cmd_create, "run": cmd_run, "start": cmd_start, "state": cmd_state, "kill": cmd_kill,
    "delete": cmd_delete, "list": cmd_list, "pause": cmd_pause, "resume": cmd_resume, "exec": cmd_exec,
    "update": _cmd_update, "ps": _cmd_ps, "events": _cmd_events, "features": _cmd_features,
    "checkpoint": _cmd_no_criu, "restore": _cmd_no_criu, "spec": _cmd_spec,
}


def parse(words: Sequence[str]) -> Args:
    """The engines' lines without argparse (runtime.cli_args), anything else with it."""
    args = cli_args.parse(words)
    if args is None:
        from runtime import cli_parser

        args = cli_args.Args(**vars(cli_parser.parse(words)))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    global _warmer
    words = sys.argv[1:] if argv is None else list(argv)
    if words in (["--version"], ["-v"]):  # dockerd's and containerd's probe: nothing else to read
        from runtime import version

        print(version.version_text())
        return 0
    args = parse(words)
    log = _Log(args.log, args.log_format)
    if args.verb in _PLACING:
        from runtime import cgwarm

        if args.verb == "exec" or cgwarm.cgroup_v2_host():
            _warmer = cgwarm.start()
    try:
        code: int = COMMANDS[args.verb](args)
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
    finally:
        _placed()


if __name__ == "__main__":
    sys.exit(main())
