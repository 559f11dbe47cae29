"""`run`, `create`, `start`: the verbs that bring a container up (exit 125/126/127 like docker);
run and create pull a missing image first (`--pull missing|always|never`, as docker)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ctrctl.errors import EXIT_DAEMON, EXIT_FAILURE, UsageError
from ctrctl.spec import build_spec

if TYPE_CHECKING:
    from ctrctl.client import Client


def _full_name(image: str) -> str:
    """`image` with docker's implied `:latest` (what docker names in "Unable to find image")."""
    if "@" in image or ":" in image.rpartition("/")[2]:
        return image
    return image + ":latest"


def _pull(client: Client, image: str) -> None:
    """The pull before a create: progress on stderr (stdout is the container's), one code path
    with `ctrctl pull`; a failed pull is a run/create failure (exit 125, as docker)."""
    from ctrctl.cmd_registry import pull_image
    from ctrctl.errors import CliError

    try:
        pull_image(client, _full_name(image), out=sys.stderr)
    except CliError as exc:
        raise CliError(exc.line, EXIT_DAEMON) from None


def _create(args: argparse.Namespace, *, detach: bool) -> tuple[Client, str]:
    spec = build_spec(args, detach=detach)  # validates every flag before the client is even imported
    from ctrctl.client import Client, daemon_error
    from ctrctl.errors import CliError
    from ctrd import errdefs
    from ctrd.v1 import container_pb2

    client = Client(args.address)
    if args.pull == "always":
        _pull(client, args.image)
    future = client.containers.Create.future(container_pb2.CreateRequest(spec=spec))
    if not detach:
        import ctrctl.attach  # noqa: F401 (loaded while the daemon creates, not after)
    try:
        try:
            resp = client.result(future)
        except errdefs.CtrdError as exc:
            # docker's order: create, and only on "no such image" pull and create again
            if exc.reason != errdefs.REASON_NO_SUCH_IMAGE or args.pull == "always":
                raise
            if args.pull == "never":
                raise CliError(f"Error: No such image: {_full_name(args.image)}", EXIT_DAEMON) from None
            print(f"Unable to find image '{_full_name(args.image)}' locally", file=sys.stderr, flush=True)
            _pull(client, args.image)
            resp = client.call(client.containers.Create, container_pb2.CreateRequest(spec=spec))
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_DAEMON)
    for warning in resp.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    return client, resp.id


def create(args: argparse.Namespace) -> int:
    _, cid = _create(args, detach=True)
    print(cid)
    return 0


def run(args: argparse.Namespace) -> int:
    interactive = (args.interactive or args.tty) and not args.detach
    if interactive:
        from ctrctl.interactive import check_detach_keys, check_tty

        check_detach_keys(args.detach_keys)
        check_tty(args.interactive, args.tty)  # before anything is created, as docker
    client, cid = _create(args, detach=args.detach)
    if interactive:
        from ctrctl import interactive as session

        return session.run(client, cid, interactive=args.interactive, detach_keys=args.detach_keys,
                           sig_proxy=args.sig_proxy and not args.tty, remove=args.rm)
    from ctrctl.attach import _remove_quietly, attach
    from ctrctl.client import daemon_error
    from ctrd import errdefs
    from ctrd.v1 import container_pb2

    if not args.detach:
        return attach(client, cid, start=True, remove=args.rm, fresh=True)
    try:
        client.call(client.containers.Start, container_pb2.StartRequest(id=cid))
    except errdefs.CtrdError as exc:
        if args.rm:
            # auto_remove acts on exit; a container that never started is removed here.
            _remove_quietly(client, cid)
        raise daemon_error(exc, EXIT_DAEMON)
    print(cid)
    return 0


def start(args: argparse.Namespace) -> int:
    from ctrctl.attach import attach
    from ctrctl.client import Client, daemon_error
    from ctrd import errdefs
    from ctrd.v1 import container_pb2

    client = Client(args.address)
    if (args.attach or args.interactive) and len(args.containers) > 1:
        raise UsageError("you cannot start and attach multiple containers at once")
    if args.interactive:
        from ctrctl import interactive

        return interactive.start(client, args.containers[0], interactive=True, detach_keys=args.detach_keys)
    if args.attach:
        return attach(client, args.containers[0], start=True, remove=False, default_exit=EXIT_FAILURE,
                      name=args.containers[0])
    failed = False
    for name in args.containers:
        try:
            client.call(client.containers.Start, container_pb2.StartRequest(id=name))
            print(name)
        except errdefs.CtrdError as exc:
            err = daemon_error(exc, EXIT_FAILURE, container=name)
            print(err.line, file=sys.stderr)
            failed = True
    return EXIT_FAILURE if failed else 0


def attach(args: argparse.Namespace) -> int:
    from ctrctl import interactive
    from ctrctl.client import Client

    return interactive.attach(Client(args.address), args.container, no_stdin=args.no_stdin,
                              detach_keys=args.detach_keys, sig_proxy=args.sig_proxy)
