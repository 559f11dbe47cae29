"""`ctrd-shim`: start a shim (the launcher's fallback) or clean up after a dead one.

    ctrd-shim start  --id ID --exec-root DIR            -> {"address", "pid", "state_dir"}
    ctrd-shim delete --id ID --exec-root DIR [--bundle B] -> {"exit_status", "exited_at"}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ctrd import errdefs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ctrd-shim", description="ctrd per-container shim")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("start", "delete"):
        s = sub.add_parser(name)
        s.add_argument("--id", required=True)
        s.add_argument("--exec-root", required=True, type=Path)
        if name == "delete":
            s.add_argument("--bundle")
    args = p.parse_args(argv)
    # Each verb imports only what it runs: `start` forks the shim from this process, so whatever
    # is imported here the shim carries too, and `delete` needs none of the shim's server code.
    try:
        if args.cmd == "start":
            from shimd.launch.fork import configure_logging, launch_result

            configure_logging()
            out = launch_result(args.exec_root, args.id)
            print(json.dumps(out), flush=True)
            return 1 if "code" in out else 0
        from shimd.cleanup import delete

        print(json.dumps(delete(args.exec_root, args.id, args.bundle)), flush=True)
        return 0
    except errdefs.CtrdError as err:
        print(f"ctrd-shim {args.cmd}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
