"""The daemon's configuration: command-line flags over an optional TOML file over defaults."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ctrd.errdefs import InvalidArgument
from daemon.security.options import Defaults, daemon_seccomp


@dataclass(frozen=True, slots=True)
class Config:
    root: Path = Path("/var/lib/ctrd")
    exec_root: Path = Path("/run/ctrd")
    address: Path = Path("/run/ctrd/ctrd.sock")
    live_restore: bool = False
    shutdown_timeout: float = 15.0  # docker's default; the real budget is max(this, stop timeout + 5)
    bridge: str = "ctrd0"
    subnet: str = "10.88.0.0/16"
    iptables: bool = True  # ctrd's own firewall chains (daemon/network/firewall.py); docker's default
    ip_masq: bool = True  # outbound NAT for the bridge's subnet (needs iptables)
    ip_forward: bool = True  # set net.ipv4.ip_forward=1 when the bridge comes up
    cgroup_parent: str = "ctrd"
    runtime: str = ""  # "" = the shim's in-process runtime library; else an OCI runtime binary
    log_level: str = "info"
    stop_timeout: int = 10  # docker's default stop timeout (linux)
    insecure_registries: tuple[str, ...] = ()  # host[:port] allowed over plain HTTP / unverified TLS
    max_concurrent_downloads: int = 3  # docker's default
    registry_mirrors: tuple[str, ...] = ()  # Docker Hub mirrors, tried in order before the Hub
    seccomp_profile: str = ""  # "" = docker's default profile, "unconfined", or a profile file
    no_new_privileges: bool = False  # process.noNewPrivileges for every container that does not say
    docker_address: str | None = None  # the Docker Engine API socket: None = <exec-root>/docker.sock, "" = off
    # --seccomp-profile as loaded and checked by build() (never a key of the TOML file or a flag)
    seccomp_default: str = field(default="builtin", repr=False)

    @property
    def security_defaults(self) -> Defaults:
        return Defaults(self.seccomp_default, self.no_new_privileges)

    @property
    def pid_file(self) -> Path:
        return self.exec_root / "ctrd.pid"

    @property
    def docker_socket(self) -> Path | None:
        if self.docker_address is None:
            return self.exec_root / "docker.sock"
        return Path(self.docker_address) if self.docker_address else None

    @property
    def runtime_root(self) -> Path:
        return self.exec_root / "runtime"


_PATHS = {"root", "exec_root", "address"}
_DERIVED = {"seccomp_default"}


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML config file; keys use the flag names (dashes or underscores)."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgument(f"config: cannot read {path}: {exc}")
    known = {f.name for f in fields(Config)} - _DERIVED
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in known:
            raise InvalidArgument(f"config: unknown key {key!r} in {path}")
        out[name] = value
    return out


def build(values: dict[str, Any]) -> Config:
    """A Config from already-merged values (unset keys keep their defaults)."""
    kwargs: dict[str, Any] = {}
    for f in fields(Config):
        if f.name in _DERIVED or values.get(f.name) is None:
            continue
        v = values[f.name]
        kwargs[f.name] = Path(v) if f.name in _PATHS else tuple(v) if f.name in ("insecure_registries", "registry_mirrors") else v
    cfg = Config(**kwargs)
    if len(str(cfg.address).encode()) >= 108:
        raise InvalidArgument(f"address: socket path longer than 107 bytes: {cfg.address}")
    if cfg.docker_socket is not None and len(str(cfg.docker_socket).encode()) >= 108:
        raise InvalidArgument(f"docker_address: socket path longer than 107 bytes: {cfg.docker_socket}")
    if not cfg.cgroup_parent.strip("/") or ".." in cfg.cgroup_parent.split("/"):
        raise InvalidArgument(f"cgroup_parent: invalid cgroup parent {cfg.cgroup_parent!r}")
    if cfg.max_concurrent_downloads < 1:
        raise InvalidArgument(f"max_concurrent_downloads: must be at least 1, got {cfg.max_concurrent_downloads}")
    if not isinstance(cfg.seccomp_profile, str):
        raise InvalidArgument(f"seccomp_profile: must be a path or unconfined, got {cfg.seccomp_profile!r}")
    return replace(cfg, seccomp_default=daemon_seccomp(cfg.seccomp_profile))
