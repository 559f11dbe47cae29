"""Time a published port from the host side (`python -m bench.port_probe PORT ...`, run in the
bench sandbox's network namespace, where the engines' bridges are).

Two measurements against busybox httpd serving /big (a sparse file of --bytes) and /small (2 bytes)
behind `127.0.0.1:PORT`:
- `--downloads K`: K downloads of /big over one connection each; MiB/s per download and seconds;
- `--connects N`: N rounds of connect + `GET /small` + the whole answer + close, in ms (what a
  client's first request through the port costs: the proxy accepts, connects to the container,
  relays both ways).

Prints one JSON object. An answer that is not 200 with the right length is an error, not a sample.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time

CHUNK = 1 << 20


def fetch(port: int, path: str, timeout: float = 60.0) -> tuple[int, int]:
    """(status, body bytes) of one HTTP/1.0 GET on a new connection, reading to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n".encode())
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        head = b""
        body = -1  # -1: the header is not complete yet
        while n := s.recv_into(view):
            if body >= 0:
                body += n
                continue
            head += bytes(view[:n])
            if b"\r\n\r\n" in head:
                head, _, rest = head.partition(b"\r\n\r\n")
                body = len(rest)
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") and body >= 0 else 0
        return status, max(body, 0)


def wait_ready(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if fetch(port, "/small", 2.0) == (200, 2):
                return
            last = "not 200"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.05)
    raise SystemExit(f"127.0.0.1:{port} did not serve /small within {timeout:.0f} s: {last}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.port_probe")
    p.add_argument("port", type=int)
    p.add_argument("--bytes", type=int, default=1 << 30, help="the size of /big")
    p.add_argument("--downloads", type=int, default=0)
    p.add_argument("--connects", type=int, default=0)
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args(argv)
    wait_ready(args.port, 30.0)
    out: dict[str, object] = {"port": args.port}
    if args.connects:
        for _ in range(args.warmup):
            fetch(args.port, "/small")
        ms = []
        for _ in range(args.connects):
            t0 = time.perf_counter()
            got = fetch(args.port, "/small")
            ms.append((time.perf_counter() - t0) * 1000)
            if got != (200, 2):
                raise SystemExit(f"GET /small answered {got}")
        out["connect_ms"] = ms
    if args.downloads:
        mbps, secs = [], []
        for _ in range(args.downloads):
            t0 = time.perf_counter()
            got = fetch(args.port, "/big", 300.0)
            dt = time.perf_counter() - t0
            if got != (200, args.bytes):
                raise SystemExit(f"GET /big answered {got}, want (200, {args.bytes})")
            secs.append(dt)
            mbps.append(args.bytes / dt / (1 << 20))
        out["download_mib_per_s"] = mbps
        out["download_s"] = secs
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
