"""The verbs that attach a terminal or stdin: `run -i/-t`, `start -a -i`, `attach`.

Order for a foreground run (nothing the process prints is lost): the container is created, the
Attach stream is opened on it (the daemon answers `started` at once and connects to the shim's
io socket between the shim's create and start), and only then is the container started.
The exit code comes at the end of the stream; docker's wording for the refusals.
"""

from __future__ import annotations

import json
import signal
import sys
from typing import TYPE_CHECKING, Any

from ctrctl.client import RpcError, daemon_error
from ctrctl.errors import EXIT_DAEMON, EXIT_FAILURE, CliError
from ctrctl.session import Result, StreamEnded, run_session
from ctrctl.tty import is_terminal
from ctrd import detachkeys, errdefs
from ctrd.v1 import container_pb2 as pb

if TYPE_CHECKING:
    from ctrctl.client import Client


def check_detach_keys(spec: str) -> None:
    """A spec that does not parse is a flag error (125), before anything is created or attached."""
    try:
        detachkeys.parse(spec)
    except errdefs.InvalidArgument as exc:
        raise CliError(f"Error: {exc.message}", EXIT_DAEMON) from None


def check_tty(attach_stdin: bool, tty: bool) -> None:
    """docker's CheckTty: a tty fed from our stdin needs a terminal there."""
    if attach_stdin and tty and not is_terminal(0):
        raise CliError("the input device is not a TTY", EXIT_FAILURE)


def session(client: Client, cid: str, *, stdin: bool, detach_keys: str, sig_proxy: bool, start: bool,
            default_exit: int, name: str = "", remove_unstarted: bool = False) -> Result:
    opened = pb.AttachOpen(id=cid, stdin=stdin, stdout=True, stderr=True, detach_keys=detach_keys)

    def on_started() -> None:
        if start:
            try:
                client.call(client.containers.Start, pb.StartRequest(id=cid))
            except errdefs.CtrdError as exc:
                if remove_unstarted:  # auto-remove acts on an exit; a container that never ran goes here
                    from ctrctl.attach import _remove_quietly

                    _remove_quietly(client, cid)
                raise daemon_error(exc, default_exit, container=name) from None

    def proxy(sig: signal.Signals) -> None:
        client.call(client.containers.Kill, pb.KillRequest(id=cid, signal=sig.name))

    try:
        return run_session(client.containers.Attach, opened, on_started=on_started,
                           proxy=proxy if sig_proxy else None)
    except RpcError as err:
        exc = client.native(err)
        if isinstance(exc, errdefs.InvalidArgument):
            raise daemon_error(exc, EXIT_DAEMON, container=name) from None
        raise daemon_error(exc, default_exit, container=name) from None
    except StreamEnded as exc:
        raise CliError(f"Error: {exc}", default_exit) from None


def run(client: Client, cid: str, *, interactive: bool, detach_keys: str, sig_proxy: bool, remove: bool) -> int:
    """`run -i`/`-t` in the foreground: the exit code, or 0 after a detach (docker).

    With --rm the daemon removes the container at its exit (auto_remove), and, as docker's
    run, the command returns only once it is gone: Wait "removed" is sent before the start, and
    answered after the removal (or its failure, reported on stderr), so a `ps -a` right after
    never lists it."""
    removed = client.containers.Wait.future(pb.WaitRequest(id=cid, condition="removed")) if remove else None
    try:
        r = session(client, cid, stdin=interactive, detach_keys=detach_keys, sig_proxy=sig_proxy, start=True,
                    default_exit=EXIT_DAEMON, remove_unstarted=remove)
        if r.exit_code is None:  # detached: it keeps running
            return 0
        if removed is not None:
            _report_removal(client, removed)
        return r.exit_code
    finally:
        if removed is not None:
            removed.cancel()  # a detach or a failure: not waited for (a no-op once answered)


def _report_removal(client: Client, removed: Any) -> None:
    """Wait for the auto-removal's answer; its failure goes to stderr (the exit code stands)."""
    try:
        error = client.result(removed).error
    except errdefs.NotFound:
        error = ""  # gone before the wait was even looked at: removed all the same
    except errdefs.CtrdError as exc:
        error = exc.message
    if error:
        print(f"Error: {error}", file=sys.stderr)


def _config(client: Client, ref: str) -> tuple[str, dict[str, object], dict[str, object]]:
    try:
        resp = client.call(client.containers.Inspect, pb.InspectRequest(id=ref))
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE, container=ref) from None
    doc = json.loads(resp.json)
    return str(doc.get("Id", ref)), doc.get("Config") or {}, doc.get("State") or {}


def _detached(r: Result) -> int:
    if r.exit_code is None:
        print("read escape sequence", file=sys.stderr)  # docker attach's words, and its exit 1
        return EXIT_FAILURE
    return r.exit_code


def attach(client: Client, ref: str, *, no_stdin: bool, detach_keys: str, sig_proxy: bool) -> int:
    check_detach_keys(detach_keys)
    cid, config, state = _config(client, ref)
    if state.get("Paused"):
        raise CliError("Error: You cannot attach to a paused container, unpause it first", EXIT_FAILURE)
    if not state.get("Running"):
        raise CliError("Error: You cannot attach to a stopped container, start it first", EXIT_FAILURE)
    stdin = bool(config.get("OpenStdin")) and not no_stdin
    check_tty(stdin, bool(config.get("Tty")))
    r = session(client, cid, stdin=stdin, detach_keys=detach_keys, sig_proxy=sig_proxy, start=False,
                default_exit=EXIT_FAILURE, name=ref)
    return _detached(r)


def start(client: Client, ref: str, *, interactive: bool, detach_keys: str) -> int:
    """`start -a [-i]`: attach (stdin with -i), then start; docker's exit codes."""
    check_detach_keys(detach_keys)
    cid, config, state = _config(client, ref)
    stdin = interactive and bool(config.get("OpenStdin"))
    check_tty(stdin, bool(config.get("Tty")))
    running = bool(state.get("Running"))
    r = session(client, cid, stdin=stdin, detach_keys=detach_keys, sig_proxy=True, start=not running,
                default_exit=EXIT_FAILURE, name=ref)
    return _detached(r)
