"""The resolver process: `python -m daemon.network.dns.resolver --socket PATH` (see __init__).

Control requests arrive on a unix socket (daemon.network.wire framing, one request → one reply):
  attach {netns, networks, upstreams?}
                             serve 127.0.0.11:53 in that namespace, from these networks' names;
                             other names go to `upstreams` (the container's --dns servers, as
                             docker's resolver does), or to the host's resolvers when there are none
  detach {netns}             stop serving it
  names {network, table}     replace a network's table (name → [addresses])
  forget {network}           drop a network's table
  state {}                   what is served (tests, debugging)
It exits once no namespace is served and no daemon is connected; the first line on stdout is
"ready" once the control socket listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ctrd import errdefs, libc
from daemon.network import syscalls, wire
from daemon.network.dns.answers import answer, servfail

DNS_ADDRESS = ("127.0.0.11", 53)
FORWARD_TIMEOUT = 2.0
MAX_PACKET = 4096


def host_nameservers(resolv_conf: Path) -> list[tuple[str, int]]:
    """The host's resolvers (loopback ones included: the resolver runs in the host's namespace)."""
    try:
        text = resolv_conf.read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and ":" not in parts[1]:
            out.append((parts[1], 53))
    return out


def parse_upstream(text: str) -> str:
    """One --dns server: an IPv4 address (the resolver's sockets are IPv4)."""
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise errdefs.InvalidArgument(f"upstreams: invalid IPv4 address {text!r}") from None


class Resolver:
    def __init__(self, upstreams: Sequence[tuple[str, int]] | None = None, resolv_conf: Path = Path("/etc/resolv.conf")) -> None:
        self._upstreams = list(upstreams) if upstreams is not None else None
        self._resolv_conf = resolv_conf
        self.tables: dict[str, dict[str, list[str]]] = {}
        self.served: dict[str, tuple[socket.socket, list[str]]] = {}  # netns path → socket, networks
        self.upstreams: dict[str, list[tuple[str, int]]] = {}  # netns path → its --dns servers
        self.clients = 0
        self.idle = asyncio.Event()
        self._host_ns = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._tasks: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        for netns in list(self.served):
            self.detach(netns)
        os.close(self._host_ns)

    # -- control -------------------------------------------------------------------------------

    def handle(self, op: str, args: dict[str, Any]) -> Any:
        if op == "attach":
            return self.attach(str(args["netns"]), [str(n) for n in args["networks"]],
                               [str(u) for u in args.get("upstreams") or ()])
        if op == "detach":
            return self.detach(str(args["netns"]))
        if op == "names":
            self.tables[str(args["network"])] = {str(k).lower(): [str(ip) for ip in v] for k, v in args["table"].items()}
            return None
        if op == "forget":
            self.tables.pop(str(args["network"]), None)
            return None
        if op == "state":
            return {"served": {ns: nets for ns, (_, nets) in self.served.items()}, "tables": self.tables,
                    "upstreams": {ns: [a for a, _ in ups] for ns, ups in self.upstreams.items()}}
        raise errdefs.InvalidArgument(f"unknown op {op!r}")

    def attach(self, netns: str, networks: list[str], upstreams: Sequence[str] = ()) -> None:
        ups = [(parse_upstream(u), 53) for u in upstreams]
        if netns in self.served:
            sock, _ = self.served[netns]
            self.served[netns] = (sock, networks)
            self._set_upstreams(netns, ups)
            return
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise errdefs.NotFound(f"network namespace {netns} does not exist")
        try:
            syscalls.setns(fd, syscalls.CLONE_NEWNET)
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
                try:
                    sock.bind(DNS_ADDRESS)
                except OSError as e:
                    sock.close()
                    raise errdefs.Internal(f"cannot listen on 127.0.0.11:53 in {netns}: {e.strerror or e}")
            finally:
                self._home()
        finally:
            os.close(fd)
        self.served[netns] = (sock, networks)
        self._set_upstreams(netns, ups)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_query, sock)
        self.idle.clear()

    def _set_upstreams(self, netns: str, ups: list[tuple[str, int]]) -> None:
        if ups:
            self.upstreams[netns] = ups
        else:
            self.upstreams.pop(netns, None)

    def detach(self, netns: str) -> None:
        entry = self.served.pop(netns, None)
        self.upstreams.pop(netns, None)
        if entry is not None:
            with contextlib.suppress(RuntimeError, ValueError):
                asyncio.get_running_loop().remove_reader(entry[0].fileno())
            entry[0].close()
        self._check_idle()

    def _check_idle(self) -> None:
        if not self.served and self.clients == 0:
            self.idle.set()

    def _home(self) -> None:
        try:
            syscalls.setns(self._host_ns, syscalls.CLONE_NEWNET)
        except OSError:
            # stranded in a container's namespace: forwarding would go to the wrong network
            print("ctrd-dns: cannot return to the host netns, exiting", file=sys.stderr)
            os._exit(70)

    # -- queries -------------------------------------------------------------------------------

    def _on_query(self, sock: socket.socket) -> None:
        for _ in range(64):  # drain a burst, then let the loop breathe
            try:
                data, peer = sock.recvfrom(MAX_PACKET)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            netns, nets = next(((ns, n) for ns, (s, n) in self.served.items() if s is sock), ("", []))
            reply = answer(data, [self.tables.get(n, {}) for n in nets])
            if reply is not None:
                with contextlib.suppress(OSError):
                    sock.sendto(reply, peer)
                continue
            task = asyncio.get_running_loop().create_task(
                self._forward(sock, data, peer, self.upstreams.get(netns, []))
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _forward(
        self, sock: socket.socket, query: bytes, peer: Any, own: Sequence[tuple[str, int]] = (),
    ) -> None:
        loop = asyncio.get_running_loop()
        if own:
            upstreams = list(own)
        else:
            upstreams = self._upstreams if self._upstreams is not None else host_nameservers(self._resolv_conf)
        reply: bytes | None = None
        for addr in upstreams:
            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
            try:
                up.connect(addr)  # only replies from that server are received
                await loop.sock_sendall(up, query)
                data = await asyncio.wait_for(loop.sock_recv(up, MAX_PACKET), FORWARD_TIMEOUT)
                if data[:2] == query[:2]:
                    reply = data
                    break
            except (OSError, TimeoutError):
                continue
            finally:
                up.close()
        if reply is None:
            reply = servfail(query)
        if reply is not None and not sock.fileno() < 0:
            with contextlib.suppress(OSError):
                sock.sendto(reply, peer)


async def serve(path: Path, resolver: Resolver) -> None:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        resolver.clients += 1
        resolver.idle.clear()
        try:
            while True:
                try:
                    head = await reader.readexactly(wire.HEADER.size)
                    (size,) = wire.HEADER.unpack(head)
                    if size > wire.MAX_FRAME:
                        break
                    body = await reader.readexactly(size)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                try:
                    req = wire.decode_body(body)
                    reply = {"ok": True, "result": resolver.handle(str(req.get("op")), dict(req.get("args", {})))}
                except Exception as e:
                    reply = wire.error_reply(e)
                writer.write(wire.encode(reply))
                await writer.drain()
        finally:
            resolver.clients -= 1
            writer.close()
            resolver._check_idle()

    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = await asyncio.start_unix_server(client, path=str(path))
    os.chmod(path, 0o600)
    print("ready", flush=True)
    resolver._check_idle()
    try:
        # a freshly started resolver waits for its daemon to connect before it may go idle
        await asyncio.sleep(0)
        while True:
            await resolver.idle.wait()
            await asyncio.sleep(1.0)  # a daemon reconnecting right away keeps it
            if resolver.idle.is_set():
                break
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        resolver.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ctrd-dns")
    p.add_argument("--socket", required=True, type=Path)
    p.add_argument("--resolv-conf", default=Path("/etc/resolv.conf"), type=Path)
    args = p.parse_args(argv)
    with contextlib.suppress(OSError):
        libc.set_process_name(b"ctrd-dns")

    async def run() -> None:
        await serve(args.socket, Resolver(resolv_conf=args.resolv_conf))

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
