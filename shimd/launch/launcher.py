"""The pre-warmed shim launcher process: `python -m shimd.launch.launcher --exec-root DIR`.

Started once by the daemon (`daemon.shims.launcher.ShimLauncher`). It imports everything a shim
runs, runs the shim's code paths once (warm-up), fills the allocator's half-used pools
(ballast), calls gc.freeze() and then forks one shim per request line, so forked shims share
those pages instead of each paying ~100 ms and ~30 MB for a fresh interpreter.
Wire: one JSON line per request on stdin ({"id": ...}), one JSON line per answer on stdout
({"address", "pid", "state_dir"} or {"code", "message"}).
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
from pathlib import Path

# Imported here, before gc.freeze() and the first fork, so that every shim shares these modules'
# pages: the shim itself (forked by launch_forked) and each backend and the port relays that a
# CreateRequest may choose (the backends import the runtime library, runtime.container).
from shimd import ports, shim  # noqa: F401
from shimd.backends import forked, inprocess, oci_binary  # noqa: F401
from shimd.launch.ballast import fill, mark_mergeable, trim
from shimd.launch.fork import configure_logging, launch_forked
from shimd.launch.warmup import warm_up


def prewarm() -> None:
    """Run what a shim runs, then freeze the GC so children share those pages."""
    warm_up()
    fill()  # collects first (warm-up garbage, free lists), then holds the free small blocks
    trim()
    gc.freeze()
    mark_mergeable()


def serve_launcher(exec_root: Path) -> int:
    configure_logging()
    prewarm()
    # shims are this process's children until it exits: let the kernel reap those that end
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    # Kept tiny on purpose: each page this loop writes between two forks is copied out of the
    # shims forked before it (see launch_forked); the child parses the request, not us.
    for line in sys.stdin.buffer:
        out.write(launch_forked(exec_root, line))
        out.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="shimd.launch.launcher", description="pre-warmed ctrd-shim launcher")
    p.add_argument("--exec-root", required=True, type=Path)
    args = p.parse_args(argv)
    return serve_launcher(args.exec_root)


if __name__ == "__main__":
    sys.exit(main())
