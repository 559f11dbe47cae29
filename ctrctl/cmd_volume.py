"""Volume verbs: create, ls, inspect, rm, prune (docker's `volume ...`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ctrctl import flags
from ctrctl.client import Client, daemon_error
from ctrctl.errors import EXIT_FAILURE, CliError
from ctrctl.format import human_size, list_rows
from ctrd import errdefs
from ctrd.v1 import volume_pb2

HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE",
           "Labels": "LABELS", "CreatedAt": "CREATED"}


def usage(args: argparse.Namespace) -> int:
    from ctrctl.parser import build

    build(["volume"]).parse_args(["volume", "--help"])
    return 0


def _call(client: Client, method: str, request: Any) -> Any:
    try:
        return client.call(getattr(client.volumes, method), request)
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE)


def _pairs(raw: list[str], flag: str) -> list[tuple[str, str]]:
    out = []
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"invalid argument {item!r} for \"{flag}\" flag: want key=value", 125)
        out.append((key, value))
    return out


def create(args: argparse.Namespace) -> int:
    req = volume_pb2.VolumeCreateRequest(name=args.name, driver=args.driver, labels=flags.parse_labels(args.label),
                                         driver_opts=dict(_pairs(args.opt, "-o, --opt")))
    print(_call(Client(args.address), "Create", req).volume.name)
    return 0


def _filters(raw: list[str], flag: str) -> list[volume_pb2.VolumeFilter]:
    return [volume_pb2.VolumeFilter(key=k, value=v) for k, v in _pairs(raw, flag)]


def ls(args: argparse.Namespace) -> int:
    resp = _call(Client(args.address), "List", volume_pb2.VolumeListRequest(filters=_filters(args.filter, "-f, --filter")))
    rows = [{"Driver": v.driver, "Name": v.name, "Mountpoint": v.mountpoint, "Scope": v.scope, "CreatedAt": v.created_at,
             "Labels": ",".join(f"{k}={val}" for k, val in sorted(v.labels.items()))} for v in resp.volumes]
    sys.stdout.write(list_rows(rows, args.format, quiet=args.quiet, quiet_key="Name", table_keys=("Driver", "Name"),
                               headers=HEADERS))
    return 0


def inspect(args: argparse.Namespace) -> int:
    from ctrctl.cmd_container import inspect_each

    client = Client(args.address)
    def fetch(name: str) -> str:
        return str(client.call(client.volumes.Inspect, volume_pb2.VolumeInspectRequest(name=name)).json)

    return inspect_each(args.volumes, fetch, args.format)


def rm(args: argparse.Namespace) -> int:
    client = Client(args.address)
    failed = False
    for name in args.volumes:
        try:
            client.call(client.volumes.Remove, volume_pb2.VolumeRemoveRequest(name=name, force=args.force))
            print(name)
        except errdefs.CtrdError as exc:
            print(f"Error response from daemon: {exc.message}", file=sys.stderr)
            failed = True
    return EXIT_FAILURE if failed else 0


def prune(args: argparse.Namespace) -> int:
    if not args.force:
        what = "all volumes not used by at least one container" if args.all else "all anonymous local volumes not used by at least one container"
        raise CliError(f"Error: volume prune removes {what}: confirm with -f/--force", 125)
    req = volume_pb2.VolumePruneRequest(all=args.all, filters=_filters(args.filter, "--filter"))
    resp = _call(Client(args.address), "Prune", req)
    if resp.removed:
        print("Deleted Volumes:")
        for name in resp.removed:
            print(name)
        print()
    print(f"Total reclaimed space: {human_size(resp.space_reclaimed)}")
    return 0
