"""`ctrctl`: entry point."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ctrctl", description="docker-shaped client for ctrd")
    p.add_argument("-a", "--address", default="/run/ctrd/ctrd.sock")
    p.parse_args(argv)
    return 0
