"""Image verbs: import, load, ls (`images`), rm (`rmi`), inspect."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

from ctrctl.client import Client, RpcError, daemon_error
from ctrctl.errors import EXIT_FAILURE, CliError
from ctrctl.format import ago, go_time, human_size, short_id, tabulate, template_rows
from ctrd import errdefs
from ctrd.v1 import image_pb2

CHUNK = 1 << 20
HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID", "CreatedSince": "CREATED",
           "CreatedAt": "CREATED AT", "Size": "SIZE"}


def usage(args: argparse.Namespace) -> int:
    from ctrctl.parser import build

    build(["image"]).parse_args(["image", "--help"])
    return 0


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.enabled = sys.stderr.isatty()

    def add(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self.total:
            filled = min(40, 40 * self.done // self.total)
            bar = "[" + "=" * filled + (">" if filled < 40 else "") + " " * (39 - filled) + "]"
            text = f"{self.label} {bar} {human_size(self.done)}/{human_size(self.total)}"
        else:
            text = f"{self.label} {human_size(self.done)}"
        sys.stderr.write("\r" + text)
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _open(path: str) -> tuple[IO[bytes], int]:
    if path == "-":
        return sys.stdin.buffer, 0
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed by the caller)
    except OSError as exc:
        raise CliError(f"Error: open {path}: {exc.strerror or exc}")
    size = os.fstat(f.fileno()).st_size
    return f, size


def _chunks(f: IO[bytes], progress: _Progress) -> Iterator[bytes]:
    while chunk := f.read(CHUNK):
        progress.add(len(chunk))
        yield chunk


def _stream(client: Client, method: Any, requests: Iterator[Any]) -> Any:
    try:
        return method(requests)
    except RpcError as err:
        raise daemon_error(client.native(err), EXIT_FAILURE)


def import_(args: argparse.Namespace) -> int:
    f, size = _open(args.file)
    client = Client(args.address)
    progress = _Progress("Importing", size)

    def requests() -> Iterator[image_pb2.ImportRequest]:
        header = image_pb2.ImportHeader(reference=args.reference, changes=args.change, message=args.message)
        yield image_pb2.ImportRequest(header=header)
        for chunk in _chunks(f, progress):
            yield image_pb2.ImportRequest(chunk=chunk)

    try:
        resp = _stream(client, client.images.Import, requests())
    finally:
        progress.close()
        if f is not sys.stdin.buffer:
            f.close()
    print(resp.id)
    return 0


def load(args: argparse.Namespace) -> int:
    if args.input == "-" and sys.stdin.isatty():
        raise CliError("Error: requested load from stdin, but stdin is empty (use -i FILE)")
    f, size = _open(args.input)
    client = Client(args.address)
    progress = _Progress("Loading", 0 if args.quiet else size)
    try:
        resp = _stream(client, client.images.Load,
                       (image_pb2.LoadRequest(chunk=c) for c in _chunks(f, progress)))
    finally:
        progress.close()
        if f is not sys.stdin.buffer:
            f.close()
    for line in resp.loaded:
        print(line)
    return 0


def _split_ref(ref: str) -> tuple[str, str]:
    """"localhost:5000/app:1.0" -> ("localhost:5000/app", "1.0")."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "<none>"
    return name, tag


def ls(args: argparse.Namespace) -> int:
    client = Client(args.address)
    try:
        resp = client.call(client.images.List, image_pb2.ImageListRequest(all=args.all))
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE)
    rows: list[dict[str, str]] = []
    for img in sorted(resp.images, key=lambda i: i.created, reverse=True):
        ident = img.id if args.no_trunc else short_id(img.id)
        digests = {d.partition("@")[0]: d.partition("@")[2] for d in img.repo_digests}
        for ref in list(img.repo_tags) or ["<none>:<none>"]:
            repo, tag = _split_ref(ref)
            rows.append({"Repository": repo, "Tag": tag, "Digest": digests.get(repo, "<none>"), "ID": ident,
                         "CreatedSince": ago(img.created), "CreatedAt": go_time(img.created),
                         "Size": human_size(img.size)})
    if args.quiet:
        seen: list[str] = []
        for r in rows:
            if r["ID"] not in seen:
                seen.append(r["ID"])
        sys.stdout.write("".join(i + "\n" for i in seen))
    elif args.format == "json":
        sys.stdout.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    elif args.format in ("", "table"):
        keys = ("Repository", "Tag", *(("Digest",) if args.digests else ()), "ID", "CreatedSince", "Size")
        sys.stdout.write(tabulate([[HEADERS[k] for k in keys]] + [[r[k] for k in keys] for r in rows]))
    else:
        sys.stdout.write(template_rows(args.format, rows, HEADERS))
    return 0


def rm(args: argparse.Namespace) -> int:
    client = Client(args.address)
    failed = False
    for ref in args.images:
        try:
            resp = client.call(client.images.Remove, image_pb2.ImageRemoveRequest(reference=ref, force=args.force))
        except errdefs.CtrdError as exc:
            print(daemon_error(exc, EXIT_FAILURE, image=ref).line, file=sys.stderr)
            failed = True
            continue
        for name in resp.untagged:
            print(f"Untagged: {name}")
        for ident in resp.deleted:
            print(f"Deleted: {ident}")
    return EXIT_FAILURE if failed else 0


def inspect(args: argparse.Namespace) -> int:
    from ctrctl.cmd_container import inspect_objects

    return inspect_objects(args, args.images, "image")
