"""Container verbs that act on existing containers: stop, restart, kill, rm, pause, unpause, wait,
inspect, logs, top. Several names per verb, like docker: each success prints the name as given,
each failure one line on stderr, and the exit code is 1 if any failed."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ctrctl import flags
from ctrctl.client import Client, RpcError, daemon_error
from ctrctl.errors import EXIT_FAILURE, CliError, UsageError
from ctrctl.format import parse_time, render_template, tabulate
from ctrd import errdefs
from ctrd.v1 import container_pb2, image_pb2


def _each(args: argparse.Namespace, names: list[str], call: Callable[[Client, str], str | None]) -> int:
    client = Client(args.address)
    failed = False
    for name in names:
        try:
            out = call(client, name)
            print(name if out is None else out, flush=True)
        except errdefs.CtrdError as exc:
            print(daemon_error(exc, EXIT_FAILURE, container=name).line, file=sys.stderr)
            failed = True
    return EXIT_FAILURE if failed else 0


def _timeout(args: argparse.Namespace) -> int | None:
    return None if args.time is None else flags.parse_int(args.time, "-t, --time", minimum=0)


def stop(args: argparse.Namespace) -> int:
    timeout = _timeout(args)
    sig = flags.parse_signal(args.signal, "-s, --signal") if args.signal else ""

    def one(c: Client, name: str) -> None:
        req = container_pb2.StopRequest(id=name, signal=sig)
        if timeout is not None:
            req.timeout = timeout
        c.call(c.containers.Stop, req)

    return _each(args, args.containers, one)


def restart(args: argparse.Namespace) -> int:
    timeout = _timeout(args)

    def one(c: Client, name: str) -> None:
        req = container_pb2.RestartRequest(id=name)
        if timeout is not None:
            req.timeout = timeout
        c.call(c.containers.Restart, req)

    return _each(args, args.containers, one)


def _simple(args: argparse.Namespace, rpc: str, make: Callable[[str], Any]) -> int:
    def one(c: Client, name: str) -> None:
        c.call(getattr(c.containers, rpc), make(name))

    return _each(args, args.containers, one)


def kill(args: argparse.Namespace) -> int:
    sig = flags.parse_signal(args.signal, "-s, --signal") if args.signal else ""
    return _simple(args, "Kill", lambda n: container_pb2.KillRequest(id=n, signal=sig))


def rm(args: argparse.Namespace) -> int:
    return _simple(args, "Remove", lambda n: container_pb2.RemoveRequest(id=n, force=args.force,
                                                                                remove_volumes=args.volumes))


def pause(args: argparse.Namespace) -> int:
    return _simple(args, "Pause", lambda n: container_pb2.PauseRequest(id=n))


def unpause(args: argparse.Namespace) -> int:
    return _simple(args, "Resume", lambda n: container_pb2.ResumeRequest(id=n))


def wait(args: argparse.Namespace) -> int:
    req = container_pb2.WaitRequest
    return _each(args, args.containers, lambda c, n: str(
        c.call(c.containers.Wait, req(id=n, condition=args.condition)).exit_code))


def _inspect_one(client: Client, name: str, kind: str | None) -> Any:
    if kind in (None, "container"):
        try:
            return json.loads(client.call(client.containers.Inspect, container_pb2.InspectRequest(id=name)).json)
        except errdefs.NotFound:
            if kind == "container":
                raise CliError(f"Error: No such container: {name}")
    try:
        return json.loads(client.call(client.images.Inspect, image_pb2.ImageInspectRequest(reference=name)).json)
    except errdefs.NotFound:
        raise CliError(f"Error: No such image: {name}" if kind == "image" else f"Error: No such object: {name}")


def print_inspect(objs: list[Any], template: str) -> None:
    if template and template != "json":
        for obj in objs:
            print(render_template(template, obj))
    else:
        print(json.dumps(objs, indent=4, ensure_ascii=False))


def inspect_each(names: list[str], fetch: Callable[[str], str], template: str) -> int:
    """`network inspect` / `volume inspect`: each name's JSON from `fetch`, the failures on stderr."""
    objs: list[Any] = []
    failed = False
    for name in names:
        try:
            objs.append(json.loads(fetch(name)))
        except errdefs.CtrdError as exc:
            print(f"Error: {exc.message}", file=sys.stderr)
            failed = True
    print_inspect(objs, template)
    return EXIT_FAILURE if failed else 0


def inspect_objects(args: argparse.Namespace, names: list[str], kind: str | None) -> int:
    client = Client(args.address)
    objs: list[Any] = []
    errors: list[str] = []
    for name in names:
        try:
            objs.append(_inspect_one(client, name, kind))
        except CliError as exc:
            errors.append(exc.line)
        except errdefs.CtrdError as exc:
            errors.append(f"Error: {exc.message}")
    print_inspect(objs, args.format)
    for line in errors:
        print(line, file=sys.stderr)
    return EXIT_FAILURE if errors else 0


def inspect(args: argparse.Namespace) -> int:
    return inspect_objects(args, args.names, args.type)


def _tail(value: str) -> int:
    if value == "all":
        return -1
    n = flags.parse_int(value, "-n, --tail")
    return -1 if n < 0 else n


def logs(args: argparse.Namespace) -> int:
    req = container_pb2.LogsRequest(
        id=args.container, follow=args.follow, tail=_tail(args.tail), stdout=True, stderr=True,
        since=parse_time(args.since, "--since"), until=parse_time(args.until, "--until"),
    )
    if req.since and req.until and req.since > req.until:
        raise UsageError("--since must not be after --until")
    client = Client(args.address)
    call = client.containers.Logs(req)
    try:
        for resp in call:
            out = sys.stderr if resp.stream == "stderr" else sys.stdout
            if args.timestamps:
                out.buffer.write(resp.time.encode() + b" ")
            if args.details:  # docker: the attrs as k=v,k=v then a space (just the space when none)
                out.buffer.write(",".join(f"{k}={v}" for k, v in sorted(resp.attrs.items())).encode() + b" ")
            out.buffer.write(resp.data)
            out.flush()
    except RpcError as err:
        raise daemon_error(client.native(err), EXIT_FAILURE, container=args.container)
    finally:
        call.cancel()
    return 0


def top(args: argparse.Namespace) -> int:
    client = Client(args.address)
    try:
        resp = client.call(client.containers.Top, container_pb2.TopRequest(id=args.container))
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE, container=args.container)
    rows = [list(resp.titles)] + [list(p.values) for p in resp.processes]
    sys.stdout.write(tabulate(rows))
    return 0
