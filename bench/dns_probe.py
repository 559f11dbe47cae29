"""Time A-record lookups of one name at ctrd's embedded resolver, from inside a container's network
namespace (`nsenter --net=<SandboxKey> python -m bench.dns_probe NAME N`).

Each lookup is one UDP query to 127.0.0.11:53 and its answer (what a libc resolver inside the
container does on a cache miss: the container has no cache). Prints one JSON object: the samples in
ms and the address answered. A query without an A answer is an error, not a sample.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import struct
import sys
import time

RESOLVER = ("127.0.0.11", 53)


def query(name: str, qid: int) -> bytes:
    """A recursion-desired A/IN query for name."""
    labels = b"".join(len(p).to_bytes(1, "big") + p.encode() for p in name.rstrip(".").split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", 1, 1)


def _skip_name(msg: bytes, off: int) -> int:
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:  # a compression pointer ends the name
            return off + 2
        if n == 0:
            return off + 1
        off += n + 1


def first_a(msg: bytes, qid: int) -> str:
    """The first A record's address of an answer to query(…, qid); ValueError when there is none."""
    if len(msg) < 12:
        raise ValueError("short dns message")
    rid, flags, qd, an = struct.unpack("!HHHH", msg[:8])
    if rid != qid or not flags & 0x8000:
        raise ValueError(f"not the answer to query {qid}")
    if flags & 0xF:
        raise ValueError(f"rcode {flags & 0xF}")
    off = 12
    for _ in range(qd):
        off = _skip_name(msg, off) + 4
    for _ in range(an):
        off = _skip_name(msg, off)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            return str(ipaddress.IPv4Address(msg[off:off + 4]))
        off += rdlen
    raise ValueError("no A record in the answer")


def probe(name: str, n: int, warmup: int = 5, timeout: float = 2.0) -> dict[str, object]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.connect(RESOLVER)
    samples: list[float] = []
    addr = ""
    try:
        for i in range(warmup + n):
            qid = (os.getpid() + i) & 0xFFFF
            t = time.perf_counter()
            s.send(query(name, qid))
            addr = first_a(s.recv(512), qid)
            if i >= warmup:
                samples.append((time.perf_counter() - t) * 1000.0)
    finally:
        s.close()
    return {"name": name, "address": addr, "samples_ms": [round(x, 4) for x in samples]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("n", type=int)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args(argv)
    print(json.dumps(probe(args.name, args.n, args.warmup)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
