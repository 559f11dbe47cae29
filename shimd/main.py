"""`ctrd-shim`: the shim's command line."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ctrd-shim", description="ctrd per-container shim")
    p.add_argument("--id", required=False)
    p.parse_args(argv)
    return 0
