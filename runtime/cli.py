"""`ctrd-runtime`: a runc-compatible command line."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ctrd-runtime", description="runc-compatible OCI runtime")
    p.add_argument("--root", default="/run/ctrd-runtime")
    p.parse_args(argv)
    return 0
