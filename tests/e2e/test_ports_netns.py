"""Published ports into a real bridge namespace: the shim's relay in front of busybox httpd (root)."""

from __future__ import annotations

import asyncio
import http.client
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctrd import errdefs
from ctrd.shim.v1 import shim_pb2
from daemon.network.manager import NetworkManager, NetworkSettings, PortMapping
from shimd.ports import start_relays
from tests.netutil import free_test_subnet

pytestmark = pytest.mark.root


@pytest.fixture
def bridge() -> Iterator[str]:
    name = "ctrdt" + secrets.token_hex(2)
    yield name
    if os.path.exists(f"/sys/class/net/{name}"):  # last resort: the tests remove it themselves
        subprocess.run(["ip", "link", "del", name], check=False)


def _forwards(s: NetworkSettings) -> list[shim_pb2.PortForward]:
    """What the daemon hands the shim: each published port aimed at the container's address."""
    return [
        shim_pb2.PortForward(protocol=p.protocol, host_ip=p.host_ip, host_port=p.host_port,
                             container_ip=s.ip_address, container_port=p.container_port)
        for p in s.ports
    ]


def _get(port: int, path: str = "/") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_httpd_in_a_bridge_namespace_answers_through_a_published_port(short_tmp: Path, bridge: str) -> None:
    www = short_tmp / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the container\n")

    async def main() -> None:
        nm = NetworkManager(short_tmp / "root", short_tmp / "run", bridge=bridge, subnet=free_test_subnet())
        await nm.start()
        httpd: subprocess.Popen[bytes] | None = None
        s = await nm.setup("a" * 64, "bridge", hostname="a", ports=[PortMapping("tcp", "127.0.0.1", 0, 80)])
        try:
            httpd = subprocess.Popen(
                ["nsenter", f"--net={s.sandbox_key}", "/bin/busybox", "httpd", "-f", "-p", "80", "-h", str(www)]
            )
            relays = await start_relays(_forwards(s))
            try:
                hport = s.ports[0].host_port
                assert relays.bound[0].host_port == hport
                deadline = time.monotonic() + 10
                while True:  # httpd may not listen yet: the relay then closes the connection
                    try:
                        status, body = await asyncio.to_thread(_get, hport)
                        break
                    except (ConnectionError, http.client.HTTPException):
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.05)
                assert (status, body) == (200, b"hello from the container\n")
                results = await asyncio.gather(*(asyncio.to_thread(_get, hport) for _ in range(10)))
                assert all(r == (200, b"hello from the container\n") for r in results)
                # the same host port cannot be published twice: clear error, nothing bound
                dup = shim_pb2.PortForward(
                    protocol="tcp", host_ip="127.0.0.1", host_port=hport, container_ip=s.ip_address, container_port=80
                )
                with pytest.raises(errdefs.FailedPrecondition, match=f"host port 127.0.0.1:{hport}/tcp is already in use"):
                    await start_relays([dup])
            finally:
                await relays.close()
                httpd.kill()  # the container stops before its network goes (the stop order)
                httpd.wait()
        finally:
            if httpd is not None and httpd.poll() is None:
                httpd.kill()
                httpd.wait()
            await nm.teardown("a" * 64, s)
            await nm.close(remove_bridge=True)

    asyncio.run(main())


UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(b"echo:" + data, addr)
"""


def test_udp_published_port_reaches_a_bridge_namespace(short_tmp: Path, bridge: str) -> None:

    async def main() -> None:
        nm = NetworkManager(short_tmp / "root", short_tmp / "run", bridge=bridge, subnet=free_test_subnet())
        await nm.start()
        s = await nm.setup("u" * 64, "bridge", hostname="u", ports=[PortMapping("udp", "127.0.0.1", 0, 5353)])
        echo = subprocess.Popen(
            ["nsenter", f"--net={s.sandbox_key}", sys.executable, "-c", UDP_ECHO], stdout=subprocess.PIPE, text=True
        )
        try:
            assert echo.stdout is not None and echo.stdout.readline() == "ready\n"
            relays = await start_relays(_forwards(s))
            try:
                loop = asyncio.get_running_loop()
                clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
                try:
                    for i, cl in enumerate(clients):
                        cl.setblocking(False)
                        cl.connect(("127.0.0.1", s.ports[0].host_port))
                        cl.send(b"q%d" % i)
                    for i, cl in enumerate(clients):
                        assert await asyncio.wait_for(loop.sock_recv(cl, 100), 5) == b"echo:q%d" % i
                    assert relays.udp_clients() == 3
                finally:
                    for cl in clients:
                        cl.close()
            finally:
                await relays.close()
        finally:
            echo.kill()
            echo.wait()
            await nm.teardown("u" * 64, s)
            await nm.close(remove_bridge=True)

    asyncio.run(main())
