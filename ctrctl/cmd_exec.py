"""`ctrctl exec`: docker's exec create, then an attached start through one Attach stream (the
output streams while the command runs; -i forwards stdin, from a pipe or a terminal; -t gives it
a pty in the container, the local terminal in raw mode, resizes following SIGWINCH), or -d: a
detached start. The exec's exit code is ctrctl's; a command that cannot run is 126, one that is
not found 127, as docker."""

from __future__ import annotations

import argparse
import sys

from ctrctl import flags
from ctrctl.client import Client, RpcError, daemon_error
from ctrctl.errors import EXIT_DAEMON, EXIT_FAILURE, CliError, UsageError
from ctrctl.interactive import check_detach_keys, check_tty
from ctrctl.session import StreamEnded, run_session
from ctrctl.tty import size
from ctrd import errdefs, reasons
from ctrd.v1 import container_pb2 as pb

DEFAULT_SIZE = (24, 80)  # a tty exec from no terminal (docker's pty default)


def exec_(args: argparse.Namespace) -> int:
    if not args.command:
        raise UsageError("exec needs a container and a command")
    check_detach_keys(args.detach_keys)
    check_tty(args.interactive and not args.detach, args.tty)
    env = flags.parse_env(args.env, [])
    attached = not args.detach
    client = Client(args.address)
    req = pb.ExecCreateRequest(
        id=args.container, args=args.command, env=env, user=args.user, working_dir=args.workdir, tty=args.tty,
        attach_stdin=args.interactive and attached, attach_stdout=attached, attach_stderr=attached,
        privileged=args.privileged, detach_keys=args.detach_keys)
    if args.tty:
        # the pty's first size goes with the create (docker's ConsoleSize): the command never sees
        # 0x0, and the daemon waits for no resize; later changes follow SIGWINCH
        req.console_rows, req.console_cols = size(0) or size(1) or DEFAULT_SIZE
    try:
        exec_id = client.call(client.containers.ExecCreate, req).exec_id
    except errdefs.CtrdError as exc:
        default = EXIT_DAEMON if isinstance(exc, errdefs.InvalidArgument) else EXIT_FAILURE
        raise daemon_error(exc, default, container=args.container)
    if args.detach:
        try:
            client.call(client.containers.ExecStart, pb.ExecStartRequest(exec_id=exec_id))
        except errdefs.CtrdError as exc:
            raise _start_error(exc) from None
        return 0
    opts = pb.AttachOpen(id=args.container, exec_id=exec_id, stdin=args.interactive, stdout=True, stderr=True,
                         detach_keys=args.detach_keys)
    try:
        result = run_session(client.containers.Attach, opts)
    except RpcError as err:
        raise _start_error(client.native(err)) from None
    except StreamEnded as exc:
        raise CliError(f"Error: {exc}", EXIT_FAILURE) from None
    finally:
        sys.stdout.flush()
    if result.detached or result.exit_code is None:
        return 0
    return result.exit_code


def _start_error(exc: errdefs.CtrdError) -> CliError:
    """docker's line for a command that could not run (exit 126/127), else the daemon's error."""
    if exc.reason not in reasons.EXIT_CODES:
        return daemon_error(exc, 126)
    at = exc.message.find('exec: "')
    core = exc.message[at:] if at >= 0 else exc.message
    return CliError(f"OCI runtime exec failed: exec failed: unable to start container process: {core}: unknown",
                    reasons.exit_code(exc.reason, 126))
