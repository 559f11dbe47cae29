"""`ctrd`: the daemon's command line (flags over an optional TOML config file over defaults)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from ctrd.errdefs import CtrdError
from daemon import __version__ as VERSION
from daemon import config


def _flag_bool(value: str) -> bool:
    v = value.lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"want true or false, not {value!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ctrd", description="ctrd container engine daemon")
    p.add_argument("--version", action="version", version=f"ctrd {VERSION}")
    p.add_argument("--config", type=Path, help="TOML config file (keys are the flag names)")
    p.add_argument("--root", help="persistent state (default /var/lib/ctrd)")
    p.add_argument("--exec-root", help="runtime state (default /run/ctrd)")
    p.add_argument("--address", help="gRPC unix socket (default /run/ctrd/ctrd.sock)")
    p.add_argument("--docker-address", metavar="PATH",
                   help='Docker Engine API unix socket (default <exec-root>/docker.sock; "" = off)')
    p.add_argument("--live-restore", action="store_true", default=None,
                   help="leave containers running when the daemon exits")
    p.add_argument("--shutdown-timeout", type=float, help="seconds to wait for containers at shutdown (default 15)")
    p.add_argument("--bridge", help="bridge device for the default network (default ctrd0)")
    p.add_argument("--subnet", help="subnet of the bridge network (default 10.88.0.0/16)")
    for flag, what in (("iptables", "ctrd's own firewall chains for its bridge"),
                       ("ip-masq", "outbound NAT (masquerade) for the bridge's subnet"),
                       ("ip-forward", "enable net.ipv4.ip_forward when the bridge comes up")):
        p.add_argument(f"--{flag}", nargs="?", const=True, type=_flag_bool, metavar="BOOL",
                       help=f"{what} (default true; --{flag}=false turns it off)")
    p.add_argument("--seccomp-profile", metavar="PATH|unconfined",
                   help="default seccomp profile of the containers (default: docker's)")
    p.add_argument("--no-new-privileges", nargs="?", const=True, type=_flag_bool, metavar="BOOL",
                   help="set no_new_privs in every container that does not say otherwise (default false)")
    p.add_argument("--cleanup", action="store_true",
                   help="remove the bridge (when no container uses it) and its firewall rules, then exit")
    p.add_argument("--cgroup-parent", help="parent cgroup of the containers (default ctrd)")
    p.add_argument("--runtime", help='OCI runtime binary (runc, ctrd-runtime); "" = in-process (default)')
    p.add_argument("--insecure-registry", dest="insecure_registries", action="append", metavar="HOST[:PORT]",
                   help="registry reached over plain HTTP or unverified TLS (loopback ones always are)")
    p.add_argument("--registry-mirror", dest="registry_mirrors", action="append", metavar="URL",
                   help="Docker Hub mirror, tried before the Hub (repeatable)")
    p.add_argument("--max-concurrent-downloads", type=int, help="layer downloads at once, daemon-wide (default 3)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="default info")
    return p


def load(argv: list[str] | None = None) -> config.Config:
    return _load(build_parser().parse_args(argv))


def _load(args: argparse.Namespace) -> config.Config:
    values: dict[str, Any] = config.load_toml(args.config) if args.config else {}
    for key, value in vars(args).items():
        if key not in ("config", "cleanup") and value is not None:
            values[key] = value
    return config.build(values)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = _load(args)
    except CtrdError as exc:
        print(f"ctrd: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, cfg.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("grpc").setLevel(logging.WARNING)  # its debug output is per poll
    from daemon.server import cleanup_network, serve

    try:
        asyncio.run(cleanup_network(cfg) if args.cleanup else serve(cfg))
    except CtrdError as exc:
        print(f"ctrd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
