"""The pre-warmed shim launcher process: `python -m shimd.launch.launcher --exec-root DIR`.

Started once by the daemon (`daemon.shims.launcher.ShimLauncher`). It imports everything a shim
runs, runs the shim's code paths once (warm-up), fills the allocator's half-used pools
(ballast), calls gc.freeze() and then forks one shim per request line (ahead of the request
while idle: shimd.launch.spare), so forked shims share those pages instead of each paying
~100 ms and ~30 MB for a fresh interpreter.
Wire: one JSON line per request on stdin ({"id": ...}), one JSON line per answer on stdout
({"address", "pid", "state_dir"} or {"code", "message"}).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import select
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

# Imported here, before gc.freeze() and the first fork, so that every shim shares these modules'
# pages: the shim itself (forked by launch_forked) and each backend and the port relays that a
# CreateRequest may choose (the backends import the runtime library, runtime.container).
from runtime import container as runtime_library
from shimd import ports, shim  # noqa: F401
from shimd.backends import forked, inprocess, oci_binary  # noqa: F401
from shimd.launch.ballast import fill, mark_mergeable, trim
from shimd.launch.fork import configure_logging, launch_forked
from shimd.launch.spare import REFILL_IDLE, SpareShim
from shimd.launch.warmup import warm_up

if TYPE_CHECKING:
    from typing import BinaryIO


def warm_seccomp(path: Path | None) -> None:
    """The daemon's seccomp profiles (a JSON list of OCI `linux.seccomp` objects, written by the
    daemon): parsed, compiled or read from the cache, and their loaders kept, before the forks,
    so that a container start with one of them costs a lookup. A profile that fails here is
    left to fail (with its message) at the start that uses it."""
    if path is None:
        return
    try:
        docs = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        logging.getLogger(__name__).warning("seccomp warm-up: %s: %s", path, exc)
        return
    for doc in docs if isinstance(docs, list) else []:
        try:
            runtime_library.warm_seccomp(doc)
        except Exception as exc:
            logging.getLogger(__name__).warning("seccomp warm-up: %s", exc)


def prewarm(seccomp_warm: Path | None = None) -> None:
    """Run what a shim runs, then freeze the GC so children share those pages."""
    warm_up()
    warm_seccomp(seccomp_warm)
    fill()  # collects first (warm-up garbage, free lists), then holds the free small blocks
    trim()
    gc.freeze()
    mark_mergeable()


def serve_launcher(exec_root: Path, seccomp_warm: Path | None = None) -> int:
    configure_logging()
    prewarm(seccomp_warm)
    # shims are this process's children until it exits: let the kernel reap those that end
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    out = sys.stdout.buffer
    if not _tell(out, b'{"ready": true}\n'):
        return 0
    serve_requests(exec_root, sys.stdin.fileno(), out)
    return 0


def serve_requests(exec_root: Path, inp: int, out: BinaryIO) -> None:
    """One answer line per request line until EOF on `inp`; a shim forked ahead (SpareShim)
    answers when there is one, and the next is forked once no request has come for REFILL_IDLE.

    Kept small on purpose: each page this loop writes between two forks is copied out of the
    shims forked before it (see launch_forked); the child parses the request, not us."""
    spare: SpareShim | None = None
    buf = b""
    try:
        while True:
            while b"\n" not in buf:
                if spare is None and not select.select([inp], [], [], REFILL_IDLE)[0]:
                    spare = SpareShim.fork(exec_root)
                    if spare is None:  # cannot fork now: serve forking afresh, try again when idle
                        select.select([inp], [], [])
                    continue
                chunk = os.read(inp, 4096)
                if not chunk:
                    return
                buf += chunk
            line, _, buf = buf.partition(b"\n")
            line += b"\n"
            answer = spare.launch(line) if spare is not None else None
            spare = None
            if not _tell(out, answer or launch_forked(exec_root, line)):
                return
    finally:
        if spare is not None:
            spare.discard()  # before the launcher's exit: no process of ours outlives it unused


def _tell(out: BinaryIO, answer: bytes) -> bool:
    """Write one answer line; False when the daemon is gone (killed: its end of the pipe closed).
    The launcher then ends quietly, as it does at the end of its input, instead of a traceback
    in the daemon's log; the shims it forked live on."""
    try:
        out.write(answer)
        out.flush()
        return True
    except BrokenPipeError:
        # what is still buffered must not fail again in the interpreter's exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="shimd.launch.launcher", description="pre-warmed ctrd-shim launcher")
    p.add_argument("--exec-root", required=True, type=Path)
    p.add_argument("--seccomp-warm", type=Path, metavar="FILE",
                   help="JSON list of OCI linux.seccomp objects to compile and keep before forking")
    args = p.parse_args(argv)
    return serve_launcher(args.exec_root, args.seccomp_warm)


if __name__ == "__main__":
    sys.exit(main())
