"""Network verbs: create, ls, inspect, rm, prune, connect, disconnect (docker's `network ...`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ctrctl import flags
from ctrctl.client import Client, daemon_error
from ctrctl.errors import EXIT_FAILURE, CliError
from ctrctl.format import list_rows
from ctrd import errdefs
from ctrd.v1 import network_pb2

HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Subnet": "SUBNET",
           "Internal": "INTERNAL"}


def usage(args: argparse.Namespace) -> int:
    from ctrctl.parser import build

    build(["network"]).parse_args(["network", "--help"])
    return 0


def _call(client: Client, method: str, request: Any) -> Any:
    try:
        return client.call(getattr(client.networks, method), request)
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE)


def _options(opts: list[str]) -> dict[str, str]:
    out = {}
    for raw in opts:
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise CliError(f"invalid argument {raw!r} for \"-o, --opt\" flag: want key=value", 125)
        out[key] = value
    return out


def create(args: argparse.Namespace) -> int:
    if args.driver not in ("bridge", ""):
        raise CliError(f"Error: driver {args.driver!r} is not supported (only bridge)", 125)
    req = network_pb2.NetworkCreateRequest(
        name=args.name, subnet=args.subnet, gateway=args.gateway, internal=args.internal,
        labels=flags.parse_labels(args.label), options=_options(args.opt),
    )
    client = Client(args.address)
    print(_call(client, "Create", req).id)
    return 0


def ls(args: argparse.Namespace) -> int:
    client = Client(args.address)
    resp = _call(client, "List", network_pb2.NetworkListRequest())
    rows = [{"ID": n.id if args.no_trunc else n.id[:12], "Name": n.name, "Driver": n.driver, "Scope": n.scope,
             "Subnet": n.subnet, "Internal": str(n.internal).lower()} for n in resp.networks]
    sys.stdout.write(list_rows(rows, args.format, quiet=args.quiet, quiet_key="ID",
                               table_keys=("ID", "Name", "Driver", "Scope"), headers=HEADERS))
    return 0


def inspect(args: argparse.Namespace) -> int:
    from ctrctl.cmd_container import inspect_each

    client = Client(args.address)
    def fetch(name: str) -> str:
        return str(client.call(client.networks.Inspect, network_pb2.NetworkInspectRequest(id=name)).json)

    return inspect_each(args.networks, fetch, args.format)


def rm(args: argparse.Namespace) -> int:
    client = Client(args.address)
    failed = False
    for name in args.networks:
        try:
            client.call(client.networks.Remove, network_pb2.NetworkRemoveRequest(id=name))
            print(name)
        except errdefs.CtrdError as exc:
            print(f"Error: {exc.message}", file=sys.stderr)
            failed = True
    return EXIT_FAILURE if failed else 0


def prune(args: argparse.Namespace) -> int:
    if not args.force:
        raise CliError("Error: network prune removes every unused network: confirm with -f/--force", 125)
    client = Client(args.address)
    removed = list(_call(client, "Prune", network_pb2.NetworkPruneRequest()).removed)
    if removed:
        print("Deleted Networks:")
        for name in removed:
            print(name)
    return 0


def connect(args: argparse.Namespace) -> int:
    client = Client(args.address)
    _call(client, "Connect", network_pb2.NetworkConnectRequest(network=args.network, container=args.container,
                                                               aliases=args.alias, ip=args.ip))
    return 0


def disconnect(args: argparse.Namespace) -> int:
    client = Client(args.address)
    _call(client, "Disconnect", network_pb2.NetworkDisconnectRequest(network=args.network, container=args.container,
                                                                     force=args.force))
    return 0
