"""Registry verbs: pull, push (progress streamed from the daemon), login, logout, tag, save.

Credentials live in docker's config.json ($DOCKER_CONFIG or ~/.docker/config.json), so what
`docker login` stored works here and the other way round; they travel with each pull/push, as
docker's X-Registry-Auth does. On a terminal, progress is docker's: one line per layer, redrawn
in place; otherwise plain lines, one per status change.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from typing import IO, Any

from ctrctl.client import Client, RpcError, daemon_error
from ctrctl.errors import EXIT_FAILURE, CliError, UsageError
from ctrctl.format import human_size
from ctrd import dockerconfig, errdefs
from ctrd.v1 import image_pb2

HUB = "docker.io"


def registry_of(ref: str) -> str:
    """The registry host a reference names (docker's rule: a first component with . or : or localhost)."""
    first, sep, _ = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return HUB


def _auth(registry: str) -> image_pb2.RegistryAuth:
    try:
        c = dockerconfig.lookup(registry)
    except errdefs.CtrdError as exc:
        raise CliError(f"Error: {exc.message}")
    return image_pb2.RegistryAuth(username=c.username, password=c.password, identity_token=c.identity_token)


class Display:
    """docker's progress lines: `<id>: <status> [bar] cur/total`, one line per id."""

    def __init__(self, out: IO[str], quiet: bool) -> None:
        self.out, self.quiet = out, quiet
        self.tty = out.isatty() and not quiet
        self.order: list[str] = []
        self.lines: dict[str, str] = {}
        self.last: dict[str, str] = {}

    @staticmethod
    def _text(msg: Any) -> str:
        if not msg.id:
            return str(msg.status)
        text = f"{msg.id}: {msg.status}"
        if msg.total and msg.status in ("Downloading", "Pushing", "Extracting"):
            filled = min(50, 50 * msg.current // msg.total)
            bar = "[" + "=" * filled + (">" if filled < 50 else "") + " " * (49 - filled) + "]"
            text += f" {bar} {human_size(msg.current)}/{human_size(msg.total)}"
        return text

    def show(self, msg: Any) -> None:
        if self.quiet:
            return
        text = self._text(msg)
        if not self.tty:
            # plain lines: each status once, never a byte count
            if self.last.get(msg.id) != msg.status or not msg.id:
                self.last[msg.id] = msg.status
                self.out.write((f"{msg.id}: {msg.status}" if msg.id else msg.status) + "\n")
                self.out.flush()
            return
        if not msg.id or msg.id not in self.lines:
            if msg.id:
                self.order.append(msg.id)
                self.lines[msg.id] = text
            self.out.write(text + "\n")
        else:
            self.lines[msg.id] = text
            up = len(self.order) - self.order.index(msg.id)
            self.out.write(f"\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r")
        self.out.flush()


def _progress(client: Client, call: Any, request: Any, quiet: bool, out: IO[str] | None = None) -> Any:
    display = Display(out or sys.stdout, quiet)
    last = None
    try:
        for msg in call(request):
            if msg.status == "done":
                last = msg
            else:
                display.show(msg)
    except RpcError as err:
        raise daemon_error(client.native(err), EXIT_FAILURE)
    except KeyboardInterrupt:
        raise CliError("Error: interrupted", EXIT_FAILURE)
    if last is None:
        raise CliError("Error: the daemon ended the stream without a result")
    return last


def pull_image(client: Client, reference: str, *, platform: str = "", quiet: bool = False,
               out: IO[str] | None = None) -> Any:
    """Pull `reference` with the stored credentials, showing progress on `out` (stdout by default);
    `pull` and the implicit pull of `run`/`create` both come here."""
    req = image_pb2.PullRequest(reference=reference, platform=platform, auth=_auth(registry_of(reference)))
    return _progress(client, client.images.Pull, req, quiet, out)


def pull(args: argparse.Namespace) -> int:
    client = Client(args.address)
    last = pull_image(client, args.reference, platform=args.platform, quiet=args.quiet)
    if args.quiet:
        print(last.id)  # the reference as pulled
    return 0


def push(args: argparse.Namespace) -> int:
    client = Client(args.address)
    req = image_pb2.PushRequest(reference=args.reference, auth=_auth(registry_of(args.reference)))
    last = _progress(client, client.images.Push, req, args.quiet)
    if args.quiet:
        print(last.digest)
    return 0


def tag(args: argparse.Namespace) -> int:
    client = Client(args.address)
    try:
        client.call(client.images.Tag, image_pb2.TagRequest(source=args.source, target=args.target))
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE, image=args.source)
    return 0


def save(args: argparse.Namespace) -> int:
    if not args.output and sys.stdout.isatty():
        raise CliError("Error: cowardly refusing to save to a terminal. Use the -o flag or redirect")
    client = Client(args.address)
    tmp = f"{args.output}.{os.getpid()}.tmp"
    out: IO[bytes]
    out = open(tmp, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
    try:
        for msg in client.images.Save(image_pb2.SaveRequest(references=args.images)):
            out.write(msg.chunk)
        out.flush()
        if args.output:
            out.close()
            os.replace(tmp, args.output)  # the archive appears whole or not at all
    except RpcError as err:
        raise daemon_error(client.native(err), EXIT_FAILURE)
    finally:
        if args.output:
            out.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return 0


def _server(args: argparse.Namespace) -> str:
    server = args.server or HUB
    return server.split("://", 1)[-1].rstrip("/").split("/", 1)[0]


def login(args: argparse.Namespace) -> int:
    server = _server(args)
    username, password = args.username, args.password
    if args.password_stdin:
        if args.password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise UsageError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    if not username:
        if not sys.stdin.isatty():
            raise UsageError("Cannot perform an interactive login from a non TTY device")
        username = input("Username: ").strip()
    if not password:
        if not sys.stdin.isatty():
            raise UsageError("Cannot perform an interactive login from a non TTY device")
        password = getpass.getpass("Password: ")
    client = Client(args.address)
    auth = image_pb2.RegistryAuth(username=username, password=password)
    try:
        resp = client.call(client.images.Login, image_pb2.LoginRequest(registry=server, auth=auth))
    except errdefs.CtrdError as exc:
        raise daemon_error(exc, EXIT_FAILURE)
    path = dockerconfig.store(server, dockerconfig.Credentials(username, password))
    print(f"WARNING! Your password will be stored unencrypted in {path}.", file=sys.stderr)
    print(resp.status)
    return 0


def logout(args: argparse.Namespace) -> int:
    server = _server(args)
    if dockerconfig.remove(server):
        print(f"Removing login credentials for {dockerconfig.key_for(server)}")
    else:
        print(f"Not logged in to {server}")
    return 0
