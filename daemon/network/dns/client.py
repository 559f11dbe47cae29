"""The daemon's side of the resolver process: connect to it, or start it when none answers."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

from ctrd import errdefs
from daemon.network import wire

START_TIMEOUT = 30.0
CALL_TIMEOUT = 10.0


class DnsClient:
    def __init__(self, socket_path: Path, python: str = sys.executable) -> None:
        self.socket_path = Path(socket_path)
        self._python = python
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._lock = asyncio.Lock()
        self.started_pid = 0  # the resolver this client started (0: it found one running)
        self._reaped: asyncio.Future[int] | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._conn is not None:
            return self._conn
        try:
            self._conn = await asyncio.open_unix_connection(str(self.socket_path))
        except (FileNotFoundError, ConnectionRefusedError):
            await self._spawn()
            self._conn = await asyncio.open_unix_connection(str(self.socket_path))
        return self._conn

    async def _spawn(self) -> None:
        """Start a resolver in its own session: it outlives this daemon, like a shim."""
        self.socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        proc = await asyncio.create_subprocess_exec(
            self._python, "-m", "daemon.network.dns.resolver", "--socket", str(self.socket_path),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, start_new_session=True, close_fds=True,
        )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise errdefs.Unavailable("dns resolver did not start")
        self.started_pid = proc.pid
        # nobody waits for it: it is reaped by init once this daemon is gone, or by the
        # event loop's child watcher while the daemon lives
        self._reaped = asyncio.ensure_future(proc.wait())

    async def call(self, op: str, **args: Any) -> Any:
        async with self._lock:
            for attempt in (1, 2):
                reader, writer = await self._connect()
                try:
                    writer.write(wire.encode({"op": op, "args": args}))
                    await writer.drain()
                    head = await asyncio.wait_for(reader.readexactly(wire.HEADER.size), CALL_TIMEOUT)
                    (size,) = wire.HEADER.unpack(head)
                    body = await asyncio.wait_for(reader.readexactly(size), CALL_TIMEOUT)
                    return wire.unwrap(wire.decode_body(body))
                except (ConnectionError, asyncio.IncompleteReadError, TimeoutError) as e:
                    # the resolver went away (idle exit, crash): a fresh one gets the request
                    self._drop()
                    if attempt == 2:
                        raise errdefs.Unavailable(f"dns resolver failed during {op}: {e or type(e).__name__}")
        return None

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                writer = self._conn[1]
                self._drop()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
