"""File verbs: cp, export, diff, commit (docker's)."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterator
from typing import Any

from ctrctl import hostcopy
from ctrctl.client import Client, RpcError, daemon_error
from ctrctl.errors import EXIT_FAILURE, CliError, UsageError
from ctrd import errdefs
from ctrd.v1 import files_pb2 as pb

LETTERS = {0: "C", 1: "A", 2: "D"}


def _fail(client: Client, exc: Exception, container: str = "") -> CliError:
    if isinstance(exc, RpcError):
        exc = client.native(exc)
    if isinstance(exc, errdefs.CtrdError):
        if isinstance(exc, errdefs.NotFound) and exc.message.startswith("Could not find the file"):
            return CliError(f"Error response from daemon: {exc.message}", EXIT_FAILURE)
        return daemon_error(exc, EXIT_FAILURE, container=container)
    raise exc


def split_arg(arg: str) -> tuple[str, str]:
    """docker's splitCpArg: ("", path) for a host path, (container, path) for CONTAINER:PATH."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return "", arg
    container, _, path = arg.partition(":")
    return container, path


def cp(args: argparse.Namespace) -> int:
    sc, sp = split_arg(args.src)
    dc, dp = split_arg(args.dst)
    if sc and dc:
        raise UsageError("copying between containers is not supported")
    if not sc and not dc:
        raise UsageError("must specify at least one container source")
    client = Client(args.address)
    try:
        if sc:
            return _from_container(client, sc, sp, dp, args)
        return _to_container(client, sp, dc, dp, args)
    except (RpcError, errdefs.CtrdError) as exc:
        raise _fail(client, exc, sc or dc) from None


def _stat(client: Client, container: str, path: str) -> Any:
    return client.call(client.files.ArchiveStat, pb.ArchiveStatRequest(id=container, path=path)).stat


def _from_container(client: Client, container: str, path: str, dst: str, args: argparse.Namespace) -> int:
    if not path:
        raise UsageError("source path must not be empty")
    if args.follow_link:
        st = _stat(client, container, path)
        if st.link_target:
            path = st.link_target
    call = client.files.ArchiveGet(pb.ArchiveGetRequest(id=container, path=path))
    first = next(call)
    st = first.stat

    def chunks() -> Iterator[bytes]:
        for msg in call:
            yield msg.chunk

    if dst == "-":
        out = sys.stdout.buffer
        for chunk in chunks():
            out.write(chunk)
        out.flush()
        return 0
    src_is_dir = stat.S_ISDIR(st.mode)
    top = st.name if not (path.endswith("/.") or path == ".") else "."
    if os.path.isdir(dst):
        hostcopy.extract(chunks(), dst, args.archive, None)
        return 0
    if dst.endswith("/"):
        raise CliError(f"Error: destination directory {dst!r} does not exist", EXIT_FAILURE)
    parent = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(parent):
        raise CliError(f"Error: no such directory: {parent}", EXIT_FAILURE)
    if os.path.lexists(dst) and src_is_dir:
        raise CliError(f"Error: cannot copy a directory to a file: {dst}", EXIT_FAILURE)
    if top == ".":
        os.mkdir(dst)
        hostcopy.extract(chunks(), dst, args.archive, None)
        return 0
    hostcopy.extract(chunks(), parent, args.archive, (top, os.path.basename(os.path.abspath(dst))))
    return 0


def _to_container(client: Client, src: str, container: str, dst: str, args: argparse.Namespace) -> int:
    if not dst:
        raise UsageError("destination path must not be empty")
    header = pb.ArchivePutHeader(id=container, path=dst, copy_uid_gid=False)
    if src == "-":
        dir_stat = _stat(client, container, dst)
        if not stat.S_ISDIR(dir_stat.mode) and not dir_stat.link_target:
            raise CliError(f"Error: destination \"{container}:{dst}\" must be a directory", EXIT_FAILURE)
        _put(client, header, hostcopy.stdin_chunks(sys.stdin.buffer.read))
        return 0
    if args.follow_link:
        src = os.path.realpath(src)
    if not os.path.lexists(src):
        raise CliError(f"Error: no such file or directory: {src}", EXIT_FAILURE)
    content = src.endswith("/.") or src == "."
    src_is_dir = os.path.isdir(src) and not os.path.islink(src)
    name = "." if content else os.path.basename(os.path.normpath(src))
    try:
        dst_stat: Any = _stat(client, container, dst)
        if dst_stat.link_target:
            dst_stat = _stat(client, container, dst_stat.link_target)
    except errdefs.NotFound as exc:
        if not exc.message.startswith("Could not find the file"):
            raise
        dst_stat = None
    if dst_stat is not None and stat.S_ISDIR(dst_stat.mode):
        arcname = name
    else:
        if dst.endswith("/"):
            raise CliError(f"Error: destination directory {container}:{dst} does not exist", EXIT_FAILURE)
        if dst_stat is not None and (src_is_dir or content):
            raise CliError(f"Error: cannot copy a directory to a file: {container}:{dst}", EXIT_FAILURE)
        parent, _, base = dst.rstrip("/").rpartition("/")
        header.path = parent or "/"
        arcname = base
        if content:  # the directory's content under a new directory named like the destination
            _put(client, header, _renamed_content(src, base, args.archive))
            return 0
    _put(client, header, hostcopy.tar_chunks(src, arcname, args.archive))
    return 0


def _renamed_content(src: str, base: str, keep_owner: bool) -> Iterator[bytes]:
    return hostcopy.tar_chunks(src.removesuffix("/.") or ".", base, keep_owner)


def _put(client: Client, header: pb.ArchivePutHeader, chunks: Iterator[bytes]) -> None:
    def requests() -> Iterator[pb.ArchivePutRequest]:
        yield pb.ArchivePutRequest(header=header)
        for chunk in chunks:
            yield pb.ArchivePutRequest(chunk=chunk)

    client.call(client.files.ArchivePut, requests())


def export(args: argparse.Namespace) -> int:
    if not args.output and sys.stdout.isatty():
        raise CliError("Error: cowardly refusing to save to a terminal. Use the -o flag or redirect", EXIT_FAILURE)
    client = Client(args.address)
    out: Any = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115 (closed below)
    try:
        for msg in client.files.Export(pb.ExportRequest(id=args.container)):
            out.write(msg.chunk)
    except RpcError as exc:
        if args.output:
            out.close()
            os.unlink(args.output)
        raise _fail(client, exc, args.container) from None
    finally:
        if args.output and not out.closed:
            out.close()
    return 0


def diff(args: argparse.Namespace) -> int:
    client = Client(args.address)
    try:
        resp = client.call(client.files.Changes, pb.ChangesRequest(id=args.container))
    except errdefs.CtrdError as exc:
        raise _fail(client, exc, args.container) from None
    for ch in resp.changes:
        print(f"{LETTERS.get(ch.kind, '?')} {ch.path}")
    return 0


def commit(args: argparse.Namespace) -> int:
    client = Client(args.address)
    req = pb.CommitRequest(id=args.container, reference=args.reference, comment=args.message, author=args.author,
                           changes=args.change, no_pause=not args.pause)
    try:
        resp = client.call(client.files.Commit, req)
    except errdefs.CtrdError as exc:
        raise _fail(client, exc, args.container) from None
    print(resp.id)
    return 0
