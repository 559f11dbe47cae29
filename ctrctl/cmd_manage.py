"""rename, update and port: the verbs that change or read one part of a container's record."""

from __future__ import annotations

import argparse
import json
import sys

from ctrctl import flags
from ctrctl.client import Client, daemon_error
from ctrctl.errors import EXIT_FAILURE, CliError, UsageError
from ctrd import errdefs
from ctrd.v1 import container_pb2


def rename(args: argparse.Namespace) -> int:
    if not args.name:
        raise UsageError("rename needs a new name")
    name = flags.validate_name(args.name)
    client = Client(args.address)
    try:
        client.call(client.containers.Rename, container_pb2.RenameRequest(id=args.container, name=name))
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE, container=args.container)
    return 0


def update_request(args: argparse.Namespace) -> container_pb2.UpdateRequest:
    """The flags as an UpdateRequest (only what was given); UsageError before any call."""
    req = container_pb2.UpdateRequest()
    if args.memory is not None:
        req.memory = -1 if args.memory == "-1" else flags.parse_memory(args.memory)
    if args.cpus is not None:
        req.nano_cpus = flags.parse_cpus(args.cpus)
    if args.pids_limit is not None:
        req.pids_limit = flags.parse_int(args.pids_limit, "--pids-limit", minimum=-1)
    if args.restart is not None:
        name, count = flags.parse_restart(args.restart)
        req.restart_policy.name = name
        req.restart_policy.maximum_retry_count = count
    if not (req.HasField("memory") or req.HasField("nano_cpus") or req.HasField("pids_limit")
            or req.HasField("restart_policy")):
        raise UsageError("you must provide one or more flags when using this command")
    return req


def update(args: argparse.Namespace) -> int:
    template = update_request(args)
    client = Client(args.address)
    failed = False
    for name in args.containers:
        req = container_pb2.UpdateRequest()
        req.CopyFrom(template)
        req.id = name
        try:
            client.call(client.containers.Update, req)
            print(name, flush=True)
        except errdefs.CtrdError as exc:
            print(daemon_error(exc, EXIT_FAILURE, container=name).line, file=sys.stderr)
            failed = True
    return EXIT_FAILURE if failed else 0


def port_lines(ports: dict[str, list[dict[str, str]] | None], wanted: str = "") -> list[str]:
    """docker port's lines from NetworkSettings.Ports: "80/tcp -> 0.0.0.0:8080", or with a
    private port asked for, just "0.0.0.0:8080"."""
    if wanted:
        num, _, proto = wanted.partition("/")
        if not num.isdigit() or proto not in ("", "tcp", "udp"):
            raise UsageError(f"invalid port {wanted!r}: PRIVATE_PORT[/tcp|udp]")
        wanted = f"{num}/{proto or 'tcp'}"
    out: list[str] = []

    def key(k: str) -> tuple[int, str]:
        n, _, p = k.partition("/")
        return int(n) if n.isdigit() else 0, p

    for k in sorted(ports, key=key):
        if wanted and k != wanted:
            continue
        for b in ports[k] or []:
            ip = b.get("HostIp") or "0.0.0.0"
            addr = f"[{ip}]:{b.get('HostPort', '')}" if ":" in ip else f"{ip}:{b.get('HostPort', '')}"
            out.append(addr if wanted else f"{k} -> {addr}")
    return out


def port(args: argparse.Namespace) -> int:
    client = Client(args.address)
    try:
        resp = client.call(client.containers.Inspect, container_pb2.InspectRequest(id=args.container))
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE, container=args.container)
    ports = (json.loads(resp.json).get("NetworkSettings") or {}).get("Ports") or {}
    lines = port_lines(ports, args.private_port)
    if args.private_port and not lines:
        raise CliError(f"Error: No public port '{args.private_port}' published for {args.container}")
    for line in lines:
        print(line)
    return 0
