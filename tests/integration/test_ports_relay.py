"""shimd.ports on loopback: an echo server on 127.0.0.1 plays the container."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable
from typing import Any

import pytest

from ctrd import errdefs
from ctrd.shim.v1 import shim_pb2
from shimd.ports import start_relays


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


async def _tcp_echo() -> tuple[asyncio.Server, int]:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        data = await r.read()  # until the client's half-close
        w.write(b"echo:" + data)
        await w.drain()
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.t.sendto(b"echo:" + data, addr)  # type: ignore[attr-defined]


def _pf(proto: str, host_port: int, cport: int, host_ip: str = "127.0.0.1") -> shim_pb2.PortForward:
    return shim_pb2.PortForward(
        protocol=proto, host_ip=host_ip, host_port=host_port, container_ip="127.0.0.1", container_port=cport
    )


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _can_bind(port: int, kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def _tcp_exchange(port: int, payload: bytes) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(payload)
    await w.drain()
    w.write_eof()
    data = await r.read()
    w.close()
    return data


def test_tcp_relay_pipes_both_ways_with_half_close() -> None:
    async def main() -> None:
        server, cport = await _tcp_echo()
        relays = await start_relays([_pf("tcp", 0, cport)])
        try:
            hport = relays.bound[0].host_port
            assert hport != 0 and hport != cport
            big = bytes(range(256)) * 4096  # 1 MiB: exercises flow control
            results = await asyncio.gather(*(_tcp_exchange(hport, big + bytes([i])) for i in range(5)))
            for i, got in enumerate(results):
                assert got == b"echo:" + big + bytes([i])
        finally:
            await relays.close()
            server.close()
            await server.wait_closed()
        assert _can_bind(hport)

    run(main())


def test_tcp_relay_closes_client_when_container_port_is_closed() -> None:
    async def main() -> None:
        dead = _free_port()
        relays = await start_relays([_pf("tcp", 0, dead)])
        try:
            r, w = await asyncio.open_connection("127.0.0.1", relays.bound[0].host_port)
            assert await r.read() == b""
            w.close()
        finally:
            await relays.close()

    run(main())


def test_udp_relay_per_client_flows_and_idle_timeout() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        et, _ = await loop.create_datagram_endpoint(_UdpEcho, local_addr=("127.0.0.1", 0))
        cport = et.get_extra_info("sockname")[1]
        relays = await start_relays([_pf("udp", 0, cport)], udp_idle_timeout=0.3)
        try:
            hport = relays.bound[0].host_port
            clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
            try:
                for i, c in enumerate(clients):
                    c.setblocking(False)
                    c.connect(("127.0.0.1", hport))
                    c.send(b"hi%d" % i)
                for i, c in enumerate(clients):
                    data = await asyncio.wait_for(loop.sock_recv(c, 100), 5)
                    assert data == b"echo:hi%d" % i
                assert relays.udp_clients() == 3
                deadline = time.monotonic() + 30  # the idle drop (0.3 s), however loaded the machine
                while relays.udp_clients() != 0:
                    assert time.monotonic() < deadline, "udp flows never dropped"
                    await asyncio.sleep(0.05)
                clients[0].send(b"again")  # a new flow after the idle drop still works
                assert await asyncio.wait_for(loop.sock_recv(clients[0], 100), 5) == b"echo:again"
            finally:
                for c in clients:
                    c.close()
        finally:
            await relays.close()
            et.close()
        assert _can_bind(hport, socket.SOCK_DGRAM)

    run(main())


@pytest.mark.parametrize("kind,proto", [(socket.SOCK_STREAM, "tcp"), (socket.SOCK_DGRAM, "udp")])
def test_taken_port_fails_and_nothing_stays_bound(kind: int, proto: str) -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, kind) as taken:
            taken.bind(("127.0.0.1", 0))
            if kind == socket.SOCK_STREAM:
                taken.listen()
            tport = taken.getsockname()[1]
            first = _free_port(kind)
            with pytest.raises(errdefs.FailedPrecondition) as ei:
                await start_relays([_pf(proto, first, 9), _pf(proto, tport, 9)])
            assert str(ei.value) == f"host port 127.0.0.1:{tport}/{proto} is already in use"
            assert _can_bind(first, kind), "the first port must have been released"

    run(main())


def test_invalid_forward_is_rejected() -> None:
    async def main() -> None:
        with pytest.raises(errdefs.InvalidArgument, match="protocol"):
            await start_relays([_pf("sctp", 0, 80)])
        with pytest.raises(errdefs.InvalidArgument, match="host ip"):
            await start_relays([_pf("tcp", 0, 80, host_ip="not-an-ip")])
        with pytest.raises(errdefs.InvalidArgument, match="container port"):
            await start_relays([_pf("tcp", 0, 0)])

    run(main())


def test_close_is_idempotent_and_unbinds_everything() -> None:
    async def main() -> list[int]:
        relays = await start_relays([_pf("tcp", 0, 80), _pf("udp", 0, 80)])
        ports = [b.host_port for b in relays.bound]
        assert not _can_bind(ports[0]) and not _can_bind(ports[1], socket.SOCK_DGRAM)
        await relays.close()
        await relays.close()
        return ports

    tport, uport = run(main())
    assert _can_bind(tport) and _can_bind(uport, socket.SOCK_DGRAM)
