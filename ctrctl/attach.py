"""Foreground containers (`run` without -d, `start -a`): stream output, forward signals, wait.

Order matters so no output is lost and the exit code is caught: Wait is sent before Start (ctrd's
Wait blocks on a created container until its next exit), then Start, then one Logs stream
(follow, stdout+stderr). The log stream is opened after Start because ctrd ends a follow stream at
once on a container that is not running yet; nothing is lost by opening it late, since it reads
the json-file log from the beginning (`run`: the container is new, so its whole log is this run's
output; `start -a`: from the instant before Start). The shim drains the container's output into
that file before its exit is recorded, and ctrd ends the follow stream as soon as the exit is
recorded, so the end of the one stream is the end of the output: no re-follow, no polling.
The main thread waits on the Wait future in short slices so SIGINT/SIGTERM handlers run; each
signal is forwarded with Kill. A third SIGINT detaches (the container keeps running).

`--rm` on a foreground run is done by the client: the spec is sent without auto_remove and the
client removes the container (force) once Wait has answered and the output is drained. With the
daemon removing it, the log stream could find the container already gone for a command that exits
at once. The cost: a client killed with SIGKILL leaves the container behind.
A detached `run -d --rm` sets auto_remove (the daemon removes it on exit).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

from ctrctl.client import Client, FutureTimeoutError, RpcError, StatusCode, daemon_error
from ctrctl.errors import EXIT_DAEMON, CliError
from ctrd import errdefs
from ctrd.v1 import container_pb2

_FORCE_DETACH_AFTER = 3


class _Pump(threading.Thread):
    """Copies one follow-mode log stream to stdout/stderr until ctrd ends it (the container exited)."""

    def __init__(self, client: Client, cid: str, since: float) -> None:
        super().__init__(name="ctrctl-logs", daemon=True)
        self.broken = threading.Event()
        self.error: errdefs.CtrdError | None = None
        req = container_pb2.LogsRequest(id=cid, follow=True, tail=-1, since=since, stdout=True, stderr=True)
        self.call: Any = client.containers.Logs(req)

    def run(self) -> None:
        out, err = sys.stdout.buffer, sys.stderr.buffer
        try:
            for resp in self.call:
                f = err if resp.stream == "stderr" else out
                f.write(resp.data)
                f.flush()
        except RpcError as exc:
            if exc.code() != StatusCode.CANCELLED:
                self.error = errgrpc_native(exc)
        except (BrokenPipeError, ValueError):
            # our reader went away (`ctrctl run ... | head`): the main thread ends the run
            self.broken.set()
            self.call.cancel()

    def stop(self) -> None:
        self.call.cancel()


def errgrpc_native(err: RpcError) -> errdefs.CtrdError:
    from ctrctl.client import native_error

    return native_error(err)


class _Signals:
    """Collects SIGINT/SIGTERM in the main thread; the wait loop forwards them."""

    def __init__(self) -> None:
        self.pending: list[signal.Signals] = []
        self.interrupts = 0
        self.saved: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        if sig == signal.SIGINT:
            self.interrupts += 1
        self.pending.append(sig)

    def drain(self) -> Iterator[signal.Signals]:
        while self.pending:
            yield self.pending.pop(0)


def attach(client: Client, cid: str, *, start: bool, remove: bool, default_exit: int = EXIT_DAEMON,
           name: str = "", fresh: bool = False) -> int:
    """Stream, start (optionally), forward signals, wait; returns the container's exit code.

    `fresh`: the container was just created, so its whole log is this run's output; otherwise
    (`start -a`) only output from now on is shown, not earlier runs' (docker attaches)."""
    stubs = client.containers
    since = 0.0 if fresh else time.time()
    # Wait is sent before Start (ctrd's Wait blocks on a created container until its next exit),
    # so the exit code is caught even if the container exits at once.
    future = stubs.Wait.future(container_pb2.WaitRequest(id=cid))
    pump: _Pump | None = None
    try:
        with _Signals() as sigs:
            if start:
                try:
                    client.call(stubs.Start, container_pb2.StartRequest(id=cid))
                except errdefs.CtrdError as exc:
                    # `start -a` on a running container attaches to it, as docker does
                    if not (isinstance(exc, errdefs.FailedPrecondition) and not fresh and _running(client, cid)):
                        future.cancel()
                        if remove:
                            _remove_quietly(client, cid)
                        raise daemon_error(exc, default_exit, container=name)
            pump = _Pump(client, cid, since)
            pump.start()
            code = _wait(client, cid, sigs, future, pump.broken)
    except _OutputClosed:
        # Like docker: the client exits when its output is closed; a --rm container is removed
        # (which kills it), any other keeps running.
        _stop(pump)
        future.cancel()
        if remove:
            _remove_quietly(client, cid)
        raise BrokenPipeError from None
    except BaseException:
        _stop(pump)
        future.cancel()
        raise
    # ctrd ends the stream as it records the exit Wait has just reported: this join is short
    # (bounded for a container a restart policy brings back, whose stream goes on).
    pump.join(timeout=5.0)
    if pump.is_alive():
        pump.stop()
        pump.join(timeout=1.0)
    if pump.error is not None:
        print(f"Error: logs: {pump.error.message}", file=sys.stderr)
    if remove:
        _remove_quietly(client, cid)
    return code


def _stop(pump: _Pump | None) -> None:
    if pump is not None:
        pump.stop()


class _OutputClosed(Exception):
    pass


def _wait(client: Client, cid: str, sigs: _Signals, future: Any, broken: threading.Event) -> int:
    while True:
        if broken.is_set():
            raise _OutputClosed
        try:
            resp = future.result(timeout=0.1)
            break
        except FutureTimeoutError:
            pass
        except RpcError as err:
            exc = client.native(err)
            raise daemon_error(exc, 1, container=cid)
        for sig in sigs.drain():
            if sigs.interrupts >= _FORCE_DETACH_AFTER:
                future.cancel()
                raise CliError(f"detached from {cid[:12]}: the container keeps running", 130)
            try:
                client.call(client.containers.Kill, container_pb2.KillRequest(id=cid, signal=sig.name))
            except errdefs.CtrdError:
                pass  # already exited: Wait returns next
    if resp.error:
        print(f"Error: {resp.error}", file=sys.stderr)
    return int(resp.exit_code)


def _running(client: Client, cid: str) -> bool:
    try:
        resp = client.call(client.containers.Inspect, container_pb2.InspectRequest(id=cid))
    except errdefs.CtrdError:
        return False
    import json

    state = json.loads(resp.json).get("State", {})
    return bool(state.get("Running")) and not state.get("Paused")


def _remove_quietly(client: Client, cid: str) -> None:
    try:
        client.call(client.containers.Remove, container_pb2.RemoveRequest(id=cid, force=True, remove_volumes=True))
    except errdefs.NotFound:
        pass
    except errdefs.CtrdError as exc:
        print(f"Error: removing {cid[:12]}: {exc.message}", file=sys.stderr)
