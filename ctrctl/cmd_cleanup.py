"""Cleanup verbs: container prune, image prune, system prune, system df (docker's)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ctrctl.client import Client, daemon_error
from ctrctl.errors import EXIT_FAILURE, CliError, UsageError
from ctrctl.format import _scaled, ago, quote, render_template, short_id, tabulate
from ctrd import errdefs
from ctrd.v1 import cleanup_pb2 as pb

FILTER_KEYS = ("until", "label", "label!")


def human(size: float) -> str:
    """go-units HumanSize (4 significant digits, decimal units): "4.261MB", as docker's df and prune."""
    return _scaled(size, 1000, ("B", "kB", "MB", "GB", "TB", "PB"), 4)


def usage_container(args: argparse.Namespace) -> int:
    from ctrctl.parser import build

    build(["container"]).parse_args(["container", "--help"])
    return 0


def usage_system(args: argparse.Namespace) -> int:
    from ctrctl.parser import build

    build(["system"]).parse_args(["system", "--help"])
    return 0


def _filters(raw: Sequence[str]) -> list[pb.Filter]:
    out = []
    for item in raw:
        key, eq, value = item.partition("=")
        if not eq or key not in FILTER_KEYS:
            raise UsageError(f"invalid filter '{item}' (until=, label=, label!=)")
        out.append(pb.Filter(key=key, value=value))
    return out


def _confirm(warning: str, force: bool) -> bool:
    if force:
        return True
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _call(client: Client, method: str, request: Any) -> Any:
    try:
        return client.call(getattr(client.cleanup, method), request)
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE)


def _containers(client: Client, filters: list[pb.Filter]) -> tuple[list[str], int]:
    resp = _call(client, "ContainerPrune", pb.ContainerPruneRequest(filters=filters))
    lines = ["Deleted Containers:", *resp.deleted, ""] if resp.deleted else []
    return lines, resp.space_reclaimed


def _images(client: Client, filters: list[pb.Filter], all_: bool) -> tuple[list[str], int]:
    resp = _call(client, "ImagePrune", pb.ImagePruneRequest(filters=filters, all=all_))
    items = [f"untagged: {d.untagged}" if d.untagged else f"deleted: {d.deleted}" for d in resp.images_deleted]
    return (["Deleted Images:", *items, ""] if items else []), resp.space_reclaimed


def _networks(client: Client) -> list[str]:
    from ctrd.v1 import network_pb2

    try:
        removed = list(client.call(client.networks.Prune, network_pb2.NetworkPruneRequest()).removed)
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE)
    return ["Deleted Networks:", *removed, ""] if removed else []


def _volumes(client: Client, filters: list[pb.Filter]) -> tuple[list[str], int]:
    """docker's system prune --volumes: the unused anonymous volumes (never the named ones,
    -a or not: docker 28's CLI sends no all=true here)."""
    from ctrd.v1 import volume_pb2

    req = volume_pb2.VolumePruneRequest(filters=[volume_pb2.VolumeFilter(key=f.key, value=f.value) for f in filters])
    try:
        resp = client.call(client.volumes.Prune, req)
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE)
    lines = ["Deleted Volumes:", *resp.removed, ""] if resp.removed else []
    return lines, resp.space_reclaimed if resp.removed else 0


def _print(lines: list[str], space: int) -> None:
    for line in lines:
        print(line)
    print(f"Total reclaimed space: {human(space)}")


def container_prune(args: argparse.Namespace) -> int:
    filters = _filters(args.filter)
    if not _confirm("WARNING! This will remove all stopped containers.", args.force):
        return 0
    _print(*_containers(Client(args.address), filters))
    return 0


def image_prune(args: argparse.Namespace) -> int:
    filters = _filters(args.filter)
    warning = ("WARNING! This will remove all images without at least one container associated to them."
               if args.all else "WARNING! This will remove all dangling images.")
    if not _confirm(warning, args.force):
        return 0
    _print(*_images(Client(args.address), filters, args.all))
    return 0


def system_prune(args: argparse.Namespace) -> int:
    filters = _filters(args.filter)
    what = ["all stopped containers", "all networks not used by at least one container"]
    if args.volumes and any(f.key == "until" for f in filters):
        raise CliError('ERROR: The "until" filter is not supported with "--volumes"')
    if args.volumes:
        what.append("all anonymous volumes not used by at least one container")
    what.append("all images without at least one container associated to them" if args.all else "all dangling images")
    what.append("unused build cache")
    warning = "WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in what)
    if not _confirm(warning, args.force):
        return 0
    client = Client(args.address)
    lines, space = _containers(client, filters)
    lines += _networks(client)
    if args.volumes:
        more, vol_space = _volumes(client, filters)
        lines += more
        space += vol_space
    more, img_space = _images(client, filters, args.all)
    _print(lines + more, space + img_space)
    return 0


# ------------------------------------------------------------------ system df

def _pct(part: int, total: int) -> str:
    return f"{human(part)} ({part * 100 // total}%)" if total > 0 else human(part)


def summary(du: Any) -> list[dict[str, str]]:
    """docker's four rows (cli/command/formatter/disk_usage.go)."""
    active_images = [i for i in du.images if i.containers]
    used = sum(i.size - i.shared_size for i in active_images)
    active_states = ("running", "paused", "restarting")
    cont_size = sum(c.size_rw for c in du.containers)
    cont_reclaim = sum(c.size_rw for c in du.containers if c.state not in active_states)
    vol_size = sum(v.size for v in du.volumes if v.size >= 0)
    vol_reclaim = sum(v.size for v in du.volumes if v.size >= 0 and v.ref_count == 0)
    return [
        {"Type": "Images", "TotalCount": str(len(du.images)), "Active": str(len(active_images)),
         "Size": human(du.layers_size), "Reclaimable": _pct(du.layers_size - used, du.layers_size)},
        {"Type": "Containers", "TotalCount": str(len(du.containers)),
         "Active": str(sum(c.state in active_states for c in du.containers)),
         "Size": human(cont_size), "Reclaimable": _pct(cont_reclaim, cont_size)},
        {"Type": "Local Volumes", "TotalCount": str(len(du.volumes)),
         "Active": str(sum(v.ref_count > 0 for v in du.volumes)),
         "Size": human(vol_size), "Reclaimable": _pct(vol_reclaim, vol_size)},
        {"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"},
    ]


HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}


def _table(rows: list[list[str]]) -> str:
    """docker's tabwriter for df (minimum cell width 10, padding 3)."""
    widths = [0] * max(len(r) for r in rows)
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths[i], len(cell) + 3, 10)
    return "".join("".join(c.ljust(widths[i]) for i, c in enumerate(r[:-1])) + r[-1] + "\n" for r in rows)


def df(args: argparse.Namespace) -> int:
    client = Client(args.address)
    du = _call(client, "DiskUsage", pb.DiskUsageRequest())
    rows = summary(du)
    if args.format == "json":
        for r in rows:
            print(json.dumps(r, sort_keys=True))
        return 0
    if args.format and not args.format.startswith("table"):
        for r in rows:
            print(render_template(args.format, r))
        return 0
    if not args.verbose:
        sys.stdout.write(_table([list(HEADERS.values()), *[[r[k] for k in HEADERS] for r in rows]]))
        return 0
    print("Images space usage:\n")
    img_rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"]]
    for i in du.images:
        for ref in list(i.repo_tags) or ["<none>:<none>"]:
            repo, _, tag = ref.rpartition(":")
            img_rows.append([repo, tag, short_id(i.id), ago(i.created), human(i.size), human(i.shared_size),
                             human(i.size - i.shared_size), str(i.containers)])
    sys.stdout.write(tabulate(img_rows))
    print("\nContainers space usage:\n")
    c_rows = [["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"]]
    for c in du.containers:
        cmd = c.command if len(c.command) <= 20 else c.command[:19] + "…"
        c_rows.append([c.id[:12], c.image, quote(cmd), str(c.local_volumes), human(c.size_rw), ago(c.created), c.status,
                       ",".join(n.lstrip("/") for n in c.names)])
    sys.stdout.write(tabulate(c_rows))
    print("\nLocal Volumes space usage:\n")
    v_rows = [["VOLUME NAME", "LINKS", "SIZE"]] + [[v.name, str(v.ref_count), human(v.size)] for v in du.volumes]
    sys.stdout.write(tabulate(v_rows))
    print("\nBuild cache usage: 0B\n")
    sys.stdout.write(tabulate([["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"]]))
    return 0
