"""Published ports: TCP and UDP relays from host ports to the container's address.

They run inside the container's shim (single thread, asyncio), not in the daemon: the shim outlives
the daemon, so a published port keeps answering while ctrd restarts (docker's userland proxy does
the same job, one process per port; here one event loop serves all of a container's ports).
They work on non-blocking sockets with the loop's add_reader and sock_* calls only (no asyncio
streams or transports), so they run on the shim's own loop (shimd.loop) and on asyncio's.

Every host port is bound before any relay starts serving: either all ports are published or none
is, and a taken port fails with one clear error while nothing stays bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ctrd import errdefs

_COPY_CHUNK = 256 * 1024
_CONNECT_TIMEOUT = 10.0
UDP_IDLE_TIMEOUT = 90.0  # docker-proxy's UDP conntrack timeout
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
UDP_MAX_CLIENTS = 1024  # bounds the upstream sockets (fds) one UDP port can hold


class PortForwardLike(Protocol):
    """What a relay needs to know; `shim_pb2.PortForward` has exactly these fields."""

    @property
    def protocol(self) -> str: ...
    @property
    def host_ip(self) -> str: ...
    @property
    def host_port(self) -> int: ...
    @property
    def container_ip(self) -> str: ...
    @property
    def container_port(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Bound:
    """A host port as actually bound (host_port 0 in the request becomes the kernel's pick)."""

    protocol: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int


def _family(host_ip: str) -> socket.AddressFamily:
    try:
        addr = ipaddress.ip_address(host_ip)
    except ValueError:
        raise errdefs.InvalidArgument(f"invalid host ip {host_ip!r} for a published port")
    return socket.AF_INET6 if addr.version == 6 else socket.AF_INET


def _label(proto: str, host_ip: str, port: int) -> str:
    ip = f"[{host_ip}]" if ":" in host_ip else host_ip
    return f"{ip}:{port}/{proto}"


def _bind(pf: PortForwardLike) -> tuple[socket.socket, Bound]:
    proto = (pf.protocol or "tcp").lower()
    if proto not in ("tcp", "udp"):
        raise errdefs.InvalidArgument(f"invalid protocol {pf.protocol!r} for published port {pf.host_port}")
    host_ip = pf.host_ip or "0.0.0.0"
    fam = _family(host_ip)
    if not 0 < pf.container_port < 65536:
        raise errdefs.InvalidArgument(f"invalid container port {pf.container_port}")
    if not 0 <= pf.host_port < 65536:
        raise errdefs.InvalidArgument(f"invalid host port {pf.host_port}")
    sock = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    try:
        if fam == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if proto == "tcp":
            # Lets a restarted shim rebind over TIME_WAIT leftovers; Linux still refuses a port
            # that has a listener. Not set for UDP, where it would allow two live owners.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host_ip, pf.host_port))
        except OSError as e:
            label = _label(proto, host_ip, pf.host_port)
            if e.errno == errno.EADDRINUSE:
                raise errdefs.FailedPrecondition(f"host port {label} is already in use")
            raise errdefs.FailedPrecondition(f"cannot bind host port {label}: {e.strerror}")
        if proto == "tcp":
            sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
        port = sock.getsockname()[1]
    except BaseException:
        sock.close()
        raise
    return sock, Bound(proto, host_ip, port, pf.container_ip, pf.container_port)


async def _pipe(loop: asyncio.AbstractEventLoop, src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := await loop.sock_recv(src, _COPY_CHUNK):
            await loop.sock_sendall(dst, data)
        dst.shutdown(socket.SHUT_WR)  # half-close: the peer sees EOF, the other direction keeps flowing
    except OSError:
        # a reset on either side: reset the other one too (abort, not a clean FIN)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                s.shutdown(socket.SHUT_RDWR)


class _TcpRelay:
    def __init__(self, sock: socket.socket, bound: Bound) -> None:
        self.sock = sock
        self.bound = bound
        self.loop = asyncio.get_running_loop()
        self.tasks: set[asyncio.Task[None]] = set()
        self.serving = False

    async def start(self) -> None:
        self.loop.add_reader(self.sock.fileno(), self._on_accept)
        self.serving = True

    def _on_accept(self) -> None:
        for _ in range(16):
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE, ECONNABORTED...: try again on the next wake-up
                return
            conn.setblocking(False)
            task = self.loop.create_task(self._relay(conn))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _relay(self, conn: socket.socket) -> None:
        b = self.bound
        up = socket.socket(_family(b.container_ip), socket.SOCK_STREAM)
        try:
            up.setblocking(False)
            try:
                await asyncio.wait_for(self.loop.sock_connect(up, (b.container_ip, b.container_port)),
                                       _CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                return  # the container is not listening: refuse by closing, as docker-proxy does
            await asyncio.gather(_pipe(self.loop, conn, up), _pipe(self.loop, up, conn))
        finally:
            up.close()
            conn.close()

    async def close(self) -> None:
        if self.serving:
            self.loop.remove_reader(self.sock.fileno())
            self.serving = False
        self.sock.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


class _UdpRelay:
    """One host socket; per client address a connected upstream socket, all read with add_reader."""

    def __init__(self, sock: socket.socket, bound: Bound, idle_timeout: float) -> None:
        self.sock = sock
        self.bound = bound
        self.idle_timeout = idle_timeout
        self.loop = asyncio.get_running_loop()
        self.clients: dict[tuple[str, int], tuple[socket.socket, list[float]]] = {}
        self.sweeper: asyncio.TimerHandle | None = None
        self.serving = False

    async def start(self) -> None:
        self.loop.add_reader(self.sock.fileno(), self._from_clients)
        self.serving = True
        self._schedule_sweep()

    def _from_clients(self) -> None:
        for _ in range(64):  # drain a burst, but do not starve the other sockets
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error queued on the socket
            self.datagram_received(data, addr)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        entry = self.clients.get(addr)
        if entry is None:
            if len(self.clients) >= UDP_MAX_CLIENTS:
                self._evict_oldest()
            try:
                entry = self._open_upstream(addr)
            except OSError:
                return
        entry[1][0] = time.monotonic()
        try:
            entry[0].send(data)
        except OSError:
            pass  # UDP: a full buffer or an ICMP error just loses this datagram

    def _open_upstream(self, addr: tuple[str, int]) -> tuple[socket.socket, list[float]]:
        b = self.bound
        up = socket.socket(_family(b.container_ip), socket.SOCK_DGRAM)
        try:
            up.setblocking(False)
            up.connect((b.container_ip, b.container_port))
            self.loop.add_reader(up.fileno(), self._from_upstream, addr)
        except BaseException:
            up.close()
            raise
        entry = (up, [time.monotonic()])
        self.clients[addr] = entry
        return entry

    def _from_upstream(self, addr: tuple[str, int]) -> None:
        entry = self.clients.get(addr)
        if entry is None:
            return
        for _ in range(64):
            try:
                data = entry[0].recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # ECONNREFUSED from an ICMP port-unreachable: nothing listens yet
            entry[1][0] = time.monotonic()
            with contextlib.suppress(OSError):  # a full buffer just loses this datagram
                self.sock.sendto(data, addr)

    def _drop(self, addr: tuple[str, int]) -> None:
        entry = self.clients.pop(addr, None)
        if entry is not None:
            self.loop.remove_reader(entry[0].fileno())
            entry[0].close()

    def _evict_oldest(self) -> None:
        oldest = min(self.clients.items(), key=lambda kv: kv[1][1][0])[0]
        self._drop(oldest)

    def _schedule_sweep(self) -> None:
        self.sweeper = self.loop.call_later(max(self.idle_timeout / 3, 0.05), self._sweep)

    def _sweep(self) -> None:
        cutoff = time.monotonic() - self.idle_timeout
        for addr in [a for a, (_, last) in self.clients.items() if last[0] < cutoff]:
            self._drop(addr)
        self._schedule_sweep()

    async def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
        for addr in list(self.clients):
            self._drop(addr)
        if self.serving:
            self.loop.remove_reader(self.sock.fileno())
            self.serving = False
        self.sock.close()


class Relays:
    """The published ports of one container; `close()` unbinds them all."""

    def __init__(self, relays: list[_TcpRelay | _UdpRelay]) -> None:
        self._relays = relays

    @property
    def bound(self) -> list[Bound]:
        return [r.bound for r in self._relays]

    def udp_clients(self) -> int:
        """Open upstream UDP flows (for tests and stats)."""
        return sum(len(r.clients) for r in self._relays if isinstance(r, _UdpRelay))

    async def close(self) -> None:
        relays, self._relays = self._relays, []
        for r in relays:
            await r.close()


async def start_relays(
    ports: Sequence[PortForwardLike], *, udp_idle_timeout: float = UDP_IDLE_TIMEOUT
) -> Relays:
    """Bind every host port, then serve them all; on any failure nothing stays bound."""
    socks: list[tuple[socket.socket, Bound]] = []
    try:
        for pf in ports:
            socks.append(_bind(pf))
    except BaseException:
        for s, _ in socks:
            s.close()
        raise
    relays: list[_TcpRelay | _UdpRelay] = []
    try:
        for s, b in socks:
            r: _TcpRelay | _UdpRelay = _TcpRelay(s, b) if b.protocol == "tcp" else _UdpRelay(s, b, udp_idle_timeout)
            relays.append(r)
            await r.start()
    except BaseException:
        for r in relays:
            await r.close()
        for s, _ in socks[len(relays):]:
            s.close()
        raise
    return Relays(relays)
