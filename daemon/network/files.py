"""The per-run name-resolution files: containers/<id>/{hostname,hosts,resolv.conf}.

They live in the container's metadata folder, not in a layer (they belong to this run, not to the
image), and the daemon bind-mounts them over the init layer's placeholders, as docker does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path

from ctrd import errdefs
from daemon.atomic import write_private

HOSTS_DEFAULT = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
# docker's fallback when the host only has loopback resolvers (unreachable from a netns)
DEFAULT_DNS = ("8.8.8.8", "8.8.4.4")


def parse_extra_host(entry: str) -> tuple[str, str]:
    """--add-host 'name:ip' (the ip may be ipv6, so split at the first colon) → (name, ip)."""
    name, sep, ip = entry.partition(":")
    if not sep or not name or not ip:
        raise errdefs.InvalidArgument(f"invalid --add-host {entry!r}: want host:ip")
    ip = ip.strip("[]")
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise errdefs.InvalidArgument(f"invalid --add-host {entry!r}: {ip!r} is not an ip address")
    return name, ip


def hosts_content(hostname: str, ip: str | None, extra_hosts: Sequence[str], base: str = HOSTS_DEFAULT) -> str:
    lines = [base if base.endswith("\n") or not base else base + "\n"]
    for entry in extra_hosts:
        name, addr = parse_extra_host(entry)
        lines.append(f"{addr}\t{name}\n")
    if ip:
        lines.append(f"{ip}\t{hostname}\n")
    return "".join(lines)


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%")[0]).is_loopback
    except ValueError:
        return False


def resolv_content(host_resolv: str, dns: Sequence[str], search: Sequence[str] = ()) -> str:
    """The host's resolv.conf minus loopback nameservers (a netns cannot reach the host's
    127.0.0.53), or with --dns replacing the nameservers; search/options lines are kept unless
    --dns-search replaces the search line ("." alone: no search line, as docker's)."""
    for d in dns:
        try:
            ipaddress.ip_address(d)
        except ValueError:
            raise errdefs.InvalidArgument(f"invalid --dns {d!r}: not an ip address")
    kept: list[str] = []
    servers = 0
    for line in host_resolv.splitlines():
        fields = line.split()
        if fields and fields[0] in ("search", "domain") and search:
            continue
        if fields and fields[0] == "nameserver":
            if dns or len(fields) < 2 or _is_loopback(fields[1]):
                continue
            servers += 1
        kept.append(line)
    chosen = list(dns) if dns else ([] if servers else list(DEFAULT_DNS))
    kept.extend(f"nameserver {d}" for d in chosen)
    domains = [d for d in search if d != "."]
    if domains:
        kept.append("search " + " ".join(domains))
    return "\n".join(kept) + "\n"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def container_files(container_dir: Path) -> dict[str, Path]:
    """Container path -> host file, as write_container_files writes them (known before it runs)."""
    return {
        "/etc/hostname": container_dir / "hostname",
        "/etc/hosts": container_dir / "hosts",
        "/etc/resolv.conf": container_dir / "resolv.conf",
    }


def write_container_files(
    container_dir: Path,
    *,
    hostname: str,
    ip: str | None,
    extra_hosts: Sequence[str],
    dns: Sequence[str],
    host_network: bool,
    dns_search: Sequence[str] = (),
    host_hosts: Path = Path("/etc/hosts"),
    host_resolv: Path = Path("/etc/resolv.conf"),
) -> dict[str, Path]:
    """Write hostname, hosts and resolv.conf atomically; returns container path → host file."""
    if not hostname or "/" in hostname or "\n" in hostname or len(hostname) > 253:
        raise errdefs.InvalidArgument(f"invalid hostname {hostname!r}")
    container_dir = Path(container_dir)
    if host_network:
        hosts = hosts_content(hostname, None, extra_hosts, base=_read(host_hosts) or HOSTS_DEFAULT)
        resolv = _read(host_resolv)
        if dns or dns_search:
            resolv = resolv_content(resolv, dns, dns_search)
    else:
        hosts = hosts_content(hostname, ip, extra_hosts)
        resolv = resolv_content(_read(host_resolv), dns, dns_search)
    out = container_files(container_dir)
    # rewritten by every start of this container, before it runs, and read only while it runs:
    # in place (no new inode per start, see daemon/containers/store.py), no fsync (a machine
    # crash takes the container with it; its next start writes them again)
    write_private(out["/etc/hostname"], f"{hostname}\n".encode())
    write_private(out["/etc/hosts"], hosts.encode())
    write_private(out["/etc/resolv.conf"], resolv.encode())
    return out
