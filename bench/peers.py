"""Which peers (runc, containerd, docker, hyperfine, unshare) are installed, and their versions.

The harness never installs anything: a missing peer is reported with the Debian package to install.
Lookups go through the `Probe` seam so unit tests use fakes.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class Probe(Protocol):
    def which(self, name: str) -> str | None: ...

    def output(self, argv: Sequence[str]) -> str | None:
        """First line-ish output of a version command, or None when it fails."""
        ...


class SystemProbe:
    """The real probe: PATH lookup and a short subprocess call."""

    def which(self, name: str) -> str | None:
        return shutil.which(name)

    def output(self, argv: Sequence[str]) -> str | None:
        try:
            res = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if res.returncode != 0:
            return None
        return res.stdout.strip() or res.stderr.strip() or None


@dataclass(frozen=True, slots=True)
class PeerSpec:
    name: str
    binaries: tuple[str, ...]        # all must be present
    version_argv: tuple[str, ...]    # binaries[0] is resolved to its path
    package: str                     # Debian package that provides it


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    present: bool
    paths: dict[str, str] = field(default_factory=dict)
    version: str = ""
    missing: tuple[str, ...] = ()
    package: str = ""


PEER_SPECS: tuple[PeerSpec, ...] = (
    PeerSpec("unshare", ("unshare", "chroot"), ("unshare", "--version"), "util-linux"),
    PeerSpec("runc", ("runc",), ("runc", "--version"), "runc"),
    PeerSpec("containerd", ("containerd", "ctr", "containerd-shim-runc-v2"), ("containerd", "--version"),
             "containerd"),
    PeerSpec("docker", ("dockerd", "docker"), ("dockerd", "--version"), "docker.io"),
    PeerSpec("hyperfine", ("hyperfine",), ("hyperfine", "--version"), "hyperfine"),
)

# docker's client from another source (e.g. a static client in /usr/local/bin) may not match dockerd:
# prefer the client that ships beside dockerd.
_DOCKER_CLIENT_NEAR_DAEMON = "/usr/bin/docker"


def first_line(text: str) -> str:
    return text.splitlines()[0].strip() if text else ""


def detect(probe: Probe, specs: Sequence[PeerSpec] = PEER_SPECS) -> dict[str, Peer]:
    peers: dict[str, Peer] = {}
    for spec in specs:
        paths: dict[str, str] = {}
        missing: list[str] = []
        for binary in spec.binaries:
            path = probe.which(binary)
            if path is None:
                missing.append(binary)
            else:
                paths[binary] = path
        if spec.name == "docker" and "dockerd" in paths and probe.which(_DOCKER_CLIENT_NEAR_DAEMON):
            paths["docker"] = _DOCKER_CLIENT_NEAR_DAEMON
        version = ""
        if not missing:
            argv = (paths[spec.version_argv[0]], *spec.version_argv[1:])
            version = first_line(probe.output(argv) or "")
        peers[spec.name] = Peer(spec.name, not missing, paths, version, tuple(missing), spec.package)
    return peers


def install_hint(peers: dict[str, Peer]) -> str | None:
    """The one apt-get command that installs every missing peer, or None when all are present."""
    packages = sorted({p.package for p in peers.values() if not p.present})
    if not packages:
        return None
    return "apt-get install " + " ".join(packages)


def describe(peers: dict[str, Peer]) -> list[str]:
    lines = []
    for peer in peers.values():
        if peer.present:
            lines.append(f"  {peer.name:<11} found     {peer.version}")
        else:
            lines.append(f"  {peer.name:<11} MISSING   (no {', '.join(peer.missing)}; "
                         f"Debian package {peer.package})")
    return lines
