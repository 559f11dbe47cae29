"""`ps`: list containers as docker's table, ids, JSON lines or a template."""

from __future__ import annotations

import argparse
import sys

from ctrctl.errors import EXIT_FAILURE
from ctrctl.flags import parse_int
from ctrctl.ps import parse_filters, render


def ps(args: argparse.Namespace) -> int:
    filters = parse_filters(args.filter)  # before connecting: a bad filter sends nothing
    last = 1 if args.latest else None
    if args.last is not None:
        last = parse_int(args.last, "-n, --last")
    from ctrctl.client import Client, daemon_error
    from ctrd import errdefs
    from ctrd.v1 import container_pb2

    client = Client(args.address)
    # A status filter shows stopped containers without -a, as docker does.
    show_all = args.all or "status" in filters.values or (last is not None and last >= 0)
    req = container_pb2.ListRequest(all=show_all, filters=filters.for_daemon())
    try:
        resp = client.call(client.containers.List, req)
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE)
    shown = [c for c in resp.containers if filters.match(c)]
    if last is not None and last >= 0:
        shown = sorted(shown, key=lambda c: c.created, reverse=True)[:last]
    sys.stdout.write(render(shown, fmt=args.format, quiet=args.quiet, trunc=not args.no_trunc))
    return 0
