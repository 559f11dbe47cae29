"""The network helper process: `python -m daemon.network.helper`.

Started once by the NetworkManager (fork+exec from asyncio, never a fork of the grpc daemon). It
is single-threaded: it may enter a container's network namespace and come back without racing any
other code. Requests arrive on stdin and replies leave on a private copy of stdout, one at a time:
{"op": name, "args": {...}} → {"ok": true, "result": ...} | {"ok": false, "code", "message"}.
The first frame it writes is a readiness reply. It exits when stdin closes (daemon gone).
"""

from __future__ import annotations

import os
import select
import signal
import sys
from typing import Any

from daemon.network import wire
from daemon.network.nsops import NetOps

OPS = {
    "sandbox_create", "netns_info", "link_delete", "bridge_info",
    "bridge_ensure", "bridge_ports", "routed_networks", "links_present", "endpoint_add",
}


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


SPARE_IDLE = 0.05  # seconds without a request before the helper makes the next spare netns


def serve(rfd: int, wfd: int) -> int:
    ops = NetOps()
    _write_all(wfd, wire.encode({"ok": True, "result": {"pid": os.getpid()}}))
    try_spare = True  # once per request: a failed attempt is not retried until the next one
    while True:
        # The next sandbox's namespace is made while nothing waits for the helper: not right
        # after a reply, when the rest of that container's start still needs the two cores.
        if try_spare and not ops.has_spare and not select.select([rfd], [], [], SPARE_IDLE)[0]:
            try_spare = False
            ops.make_spare()
            continue
        try_spare = True
        head = _read_exact(rfd, wire.HEADER.size)
        if head is None:
            break
        (size,) = wire.HEADER.unpack(head)
        if size > wire.MAX_FRAME:
            return 2
        body = _read_exact(rfd, size)
        if body is None:
            break
        reply: dict[str, Any]
        try:
            req = wire.decode_body(body)
            op = str(req.get("op"))
            if op not in OPS:
                raise ValueError(f"unknown op {op!r}")
            result = getattr(ops, op)(**req.get("args", {}))
            reply = {"ok": True, "result": result}
        except Exception as e:
            reply = wire.error_reply(e)
        try:
            _write_all(wfd, wire.encode(reply))
        except BrokenPipeError:
            break  # the daemon is gone (kill -9): nobody to answer, nothing half-done
    ops.close()
    return 0


def main() -> int:
    # Ctrl-C in the daemon's terminal must not kill an operation halfway; EOF on stdin ends us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.dup(1)
    os.set_inheritable(out, False)
    os.dup2(2, 1)  # a stray print must not corrupt the reply stream
    return serve(0, out)


if __name__ == "__main__":
    sys.exit(main())
