"""Shim features beyond the lifecycle: OOM reporting and published ports (relays in the shim)."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import pytest

from ctrd import errdefs
from ctrd.shim.v1 import shim_pb2
from tests.e2e.test_shim_support import BACKENDS, Harness

pytestmark = pytest.mark.root


def run(tmp: Path, backend: str, body) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        async with Harness(tmp, backend) as h:
            await body(h)

    asyncio.run(asyncio.wait_for(go(), 120))


def test_ctrd_runtime_as_a_binary_reports_taxonomy_errors(short_tmp: Path) -> None:
    """The OCI-binary backend driving ctrd-runtime (as containerd or dockerd would) gets the error's
    code and reason from the runtime's JSON log, not from its wording."""
    runtime = short_tmp / "ctrd-runtime"
    runtime.write_text(f"#!/bin/sh\nexec {sys.executable} -m runtime.cli \"$@\"\n")
    runtime.chmod(0o755)

    async def body(h: Harness) -> None:
        with pytest.raises(errdefs.CtrdError) as ei:
            await h.container(["/no/such/binary"])
        assert isinstance(ei.value, errdefs.InvalidArgument)
        assert ei.value.reason == errdefs.REASON_EXEC_NOT_FOUND
        assert ei.value.message.startswith(f"{runtime} create ")
        with pytest.raises(errdefs.CtrdError) as ei:
            await h.container(["/etc"])  # exists, cannot be executed: docker's 126
        assert isinstance(ei.value, errdefs.InvalidArgument)
        assert ei.value.reason == errdefs.REASON_EXEC_NOT_INVOKABLE

    run(short_tmp, str(runtime), body)


@pytest.mark.parametrize("backend", BACKENDS)
def test_oom_kill_is_reported(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        limit = 16 * 1024 * 1024
        # the shell keeps growing a variable until the memory cgroup's OOM killer ends it
        _, _, c = await h.container(
            ["sh", "-c", "x=y; while :; do x=$x$x; done"],
            resources={"memory": {"limit": limit, "swap": limit}})
        w = await c.wait(timeout=60)
        assert w.exit_status == 137
        assert w.oom_killed
        assert (await c.state()).oom_killed

    run(short_tmp, backend, body)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_published_port_relays_and_is_released_on_delete(short_tmp: Path) -> None:
    async def body(h: Harness) -> None:
        # the relay's target is a host-side echo server standing in for the container's address
        async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(await r.read(100))
            await w.drain()
            w.close()

        target = await asyncio.start_server(echo, "127.0.0.1", 0)
        tport = target.sockets[0].getsockname()[1]
        hport = _free_port()
        pf = shim_pb2.PortForward(protocol="tcp", host_ip="127.0.0.1", host_port=hport,
                                  container_ip="127.0.0.1", container_port=tport)
        _, _, c = await h.container(["sh", "-c", "while :; do sleep 0.1; done"], ports=[pf])
        r, w = await asyncio.open_connection("127.0.0.1", hport)
        w.write(b"ping")
        await w.drain()
        assert await asyncio.wait_for(r.read(100), 10) == b"ping"
        w.close()
        # a second container asking for the same host port is refused, and nothing is left running
        with pytest.raises((errdefs.FailedPrecondition, errdefs.InvalidArgument)):
            await h.container(["true"], ports=[pf])
        await c.kill(9)
        await c.wait(timeout=10)
        await c.delete()
        with socket.socket() as s:  # the host port is free again
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", hport))
        target.close()

    run(short_tmp, "runc", body)


def test_ctrd_shim_delete_never_descends_into_a_mount(short_tmp: Path) -> None:
    """The rootfs mount belongs to the daemon: cleaning a shim's state dir must leave it alone."""
    import subprocess
    import sys

    exec_root = short_tmp / "er"
    state = exec_root / "shims" / "mnt1"
    rootfs = state / "rootfs"
    rootfs.mkdir(parents=True)
    (state / "exit.json").write_text('{"exit_status": 3, "exited_at": 12.5}')
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(rootfs)], check=True)
    try:
        (rootfs / "keep").write_text("data")
        out = subprocess.run([sys.executable, "-m", "shimd.main", "delete", "--id", "mnt1", "--exec-root",
                              str(exec_root)], capture_output=True, text=True, check=True, timeout=60)
        assert json.loads(out.stdout) == {"exit_status": 3, "exited_at": 12.5}
        assert (rootfs / "keep").read_text() == "data"
        assert not (state / "exit.json").exists()
    finally:
        subprocess.run(["umount", str(rootfs)], check=True)
