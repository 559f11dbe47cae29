"""`ctrd`: the daemon's command line."""

from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ctrd", description="ctrd container engine daemon")
    p.add_argument("--root", default="/var/lib/ctrd", help="persistent state (default /var/lib/ctrd)")
    p.add_argument("--exec-root", default="/run/ctrd", help="runtime state (default /run/ctrd)")
    p.add_argument("--address", default="/run/ctrd/ctrd.sock", help="gRPC unix socket")
    return p


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return 0
