"""The network helper process and its client: framing, errors across the pipe, restart."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from ctrd import errdefs
from daemon.network import wire
from daemon.network.client import HelperClient


def test_wire_round_trips_results_and_errors() -> None:
    frame = wire.encode({"ok": True, "result": [1, "a"]})
    assert wire.HEADER.unpack(frame[:4])[0] == len(frame) - 4
    assert wire.unwrap(wire.decode_body(frame[4:])) == [1, "a"]
    err = wire.error_reply(errdefs.FailedPrecondition("bridge x is in use", reason="r"))
    with pytest.raises(errdefs.FailedPrecondition, match="bridge x is in use") as ei:
        wire.unwrap(err)
    assert ei.value.reason == "r"
    with pytest.raises(errdefs.Internal, match="ValueError: boom"):
        wire.unwrap(wire.error_reply(ValueError("boom")))


def test_helper_serves_requests_maps_errors_and_restarts_after_a_crash(tmp_path: Path) -> None:
    async def main() -> None:
        client = HelperClient()
        await client.start()
        try:
            pid = client.pid
            assert pid > 0 and pid != os.getpid()
            # the helper is single-threaded: that is what makes setns in it safe
            threads = int(next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("Threads:")).split()[1])
            assert threads == 1
            assert await client.call("bridge_info", name="ctrdnohelper0") is None
            with pytest.raises(errdefs.Internal, match="unknown op"):
                await client.call("shell", cmd="true")
            with pytest.raises(errdefs.NotFound, match="does not exist"):
                await client.call("netns_info", netns=str(tmp_path / "missing"))
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(errdefs.Unavailable, match="network helper"):
                await client.call("bridge_info", name="ctrdnohelper0")
            assert await client.call("bridge_info", name="ctrdnohelper0") is None
            assert client.pid != pid
        finally:
            await client.close()

    asyncio.run(main())


def test_close_ends_the_helper(tmp_path: Path) -> None:
    async def main() -> int:
        client = HelperClient()
        await client.start()
        pid = client.pid
        await client.close()
        await client.close()
        return pid

    pid = asyncio.run(main())
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_a_cancelled_call_keeps_the_helper_and_the_stream_in_step(tmp_path: Path) -> None:
    async def main() -> None:
        client = HelperClient()
        await client.start()
        try:
            pid = client.pid
            for _ in range(5):
                task = asyncio.ensure_future(client.call("routed_networks"))
                await asyncio.sleep(0)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert await client.call("bridge_info", name="ctrdnohelper0") is None
            assert client.pid == pid
        finally:
            await client.close()

    asyncio.run(main())


def test_netns_file_ops_run_in_the_daemon_without_the_helper(tmp_path: Path) -> None:
    """Listing and removing netns files enter no namespace: they never wait for (or start) the helper."""
    async def main() -> None:
        client = HelperClient()  # never started
        (tmp_path / "a").touch()
        (tmp_path / ".staging").touch()
        assert await client.call("list_sandboxes", directory=str(tmp_path)) == [str(tmp_path / "a")]
        assert await client.call("list_sandboxes", directory=str(tmp_path / "missing")) == []
        await client.call("sandbox_delete", path=str(tmp_path / "a"))  # not a mount: unlinked all the same
        await client.call("sandbox_delete", path=str(tmp_path / "a"))  # already gone: fine
        assert not (tmp_path / "a").exists()
        (tmp_path / "d").mkdir()
        with pytest.raises(errdefs.Internal, match="is a directory"):
            await client.call("sandbox_delete", path=str(tmp_path / "d"))
        assert client.pid == 0

    asyncio.run(main())
