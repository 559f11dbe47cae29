"""The first step of create: check and normalise every parameter of a ContainerSpec.

Each refusal is InvalidArgument whose message starts with the field it is about. The image's
defaults (Env, Cmd, Entrypoint, WorkingDir, User, StopSignal, ExposedPorts, Labels) are merged
here, so the record holds exactly what will run.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ctrd import ids, signals
from ctrd.errdefs import InvalidArgument
from ctrd.v1 import container_pb2
from daemon.containers import healthcheck, logopts, netopts
from daemon.containers.record import Config, HostConfig, MountSpec, PortBinding, RestartPolicy
from daemon.containers.signals import parse_signal
from daemon.images.api import ImageConfigLike
from daemon.security import devices, limits, options
from daemon.volumes import names as volume_names

HOSTNAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
NETWORK_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")  # as daemon.network.networks.NAME_RE
USER_RE = re.compile(r"^[a-zA-Z0-9_.][a-zA-Z0-9_.-]*(:[a-zA-Z0-9_.][a-zA-Z0-9_.-]*)?$")
ENV_KEY_RE = re.compile(r"^[^=\0]+$")
MAX_NAME = 128
MAX_ENV_BYTES = 256 * 1024  # the kernel refuses exec beyond ~2 MB of args+env; keep well below
MAX_ARG_BYTES = 128 * 1024  # MAX_ARG_STRLEN: one string longer than this cannot be exec'd
MIN_MEMORY = 6 * 1024 * 1024  # docker's minimum (linux)
MAX_STOP_TIMEOUT = 24 * 3600
MAX_CONSOLE = 10000  # rows or columns of a tty, as the shim's limit
LOG_DRIVERS = ("json-file", "local", "none")
DEFAULT_LOG_MAX_SIZE = 20 * 1024 * 1024  # docker's `local` driver: 20m x 5 files
DEFAULT_LOG_MAX_FILE = 5
RESTART_NAMES = ("no", "always", "on-failure", "unless-stopped")
FORBIDDEN_TARGETS = ("/proc", "/sys")
KNOWN_CAPS = frozenset(
    ["AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE", "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM"]
)

_ADJ = ["admiring", "brave", "calm", "eager", "focused", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty", "quirky", "serene", "vibrant", "zen"]
_NOUN = ["babbage", "curie", "darwin", "euler", "fermi", "galileo", "hopper", "knuth", "lovelace", "noether", "pascal", "ritchie", "shannon", "turing"]


@dataclass(frozen=True, slots=True)
class Normalized:
    name: str
    path: str
    args: tuple[str, ...]
    config: Config
    host_config: HostConfig
    warnings: tuple[str, ...]


def random_name() -> str:
    return f"{secrets.choice(_ADJ)}_{secrets.choice(_NOUN)}"


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not ids.valid_name(name):
        raise InvalidArgument(f"name: invalid container name ({name!r}), only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed")
    return name.lstrip("/")


def _env(image_env: Iterable[str], spec_env: Iterable[str]) -> tuple[str, ...]:
    merged: dict[str, str] = {}
    for item in image_env:
        key, _, _ = item.partition("=")
        merged[key] = item
    for item in spec_env:
        key, sep, _ = item.partition("=")
        if not key or not ENV_KEY_RE.match(key) or "\0" in item:
            raise InvalidArgument(f"env: invalid environment variable: {item[:64]!r}")
        if len(item) >= MAX_ARG_BYTES:
            raise InvalidArgument(f"env: variable {key[:64]!r} is longer than {MAX_ARG_BYTES} bytes")
        merged[key] = item if sep else f"{key}="
    env = tuple(merged.values())
    if sum(len(e) + 1 for e in env) > MAX_ENV_BYTES:
        raise InvalidArgument(f"env: environment is larger than {MAX_ENV_BYTES} bytes")
    return env


def _command(spec: container_pb2.ContainerSpec, img: ImageConfigLike) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """docker's rules: --entrypoint resets the image's Cmd; an entrypoint of [""] means none."""
    if spec.entrypoint_set:
        entrypoint = tuple(e for e in spec.entrypoint) if list(spec.entrypoint) != [""] else ()
        cmd = tuple(spec.cmd) if spec.cmd_set else ()
    else:
        entrypoint = tuple(img.entrypoint or ())
        cmd = tuple(spec.cmd) if spec.cmd_set else tuple(img.cmd or ())
    argv = entrypoint + cmd
    if not argv:
        raise InvalidArgument("cmd: no command specified")
    if not argv[0]:
        raise InvalidArgument("cmd: the command to run is an empty string")
    for a in argv:
        if "\0" in a:
            raise InvalidArgument("cmd: argument contains a NUL byte")
    if sum(len(a) + 1 for a in argv) > MAX_ENV_BYTES:
        raise InvalidArgument(f"cmd: command line is larger than {MAX_ENV_BYTES} bytes")
    return entrypoint, cmd


def _abs_path(value: str, field: str) -> str:
    if not value.startswith("/") or "\0" in value:
        raise InvalidArgument(f"{field}: {value!r} is not an absolute path")
    return os.path.normpath(value).replace("//", "/")


_PROPAGATIONS = ("", "rprivate", "private", "rshared", "shared", "rslave", "slave")
_ORIGINS = ("", "binds", "mounts", "tmpfs")


def _mounts(spec: container_pb2.ContainerSpec) -> tuple[MountSpec, ...]:
    out: list[MountSpec] = []
    seen: set[str] = set()
    for m in spec.mounts:
        kind = m.type or "bind"
        if kind not in ("bind", "tmpfs", "volume"):
            raise InvalidArgument(f"mounts: unsupported mount type {kind!r} (bind, volume or tmpfs)")
        target = _abs_path(m.target, "mounts.target")
        if target == "/":
            raise InvalidArgument("mounts.target: cannot mount over /")
        for bad in FORBIDDEN_TARGETS:
            if target == bad or target.startswith(bad + "/"):
                raise InvalidArgument(f"mounts.target: {target} is inside {bad}, which is not allowed")
        if target in seen:
            raise InvalidArgument(f"mounts.target: duplicate mount point: {target}")
        seen.add(target)
        if m.origin not in _ORIGINS:
            raise InvalidArgument(f"mounts.origin: {m.origin!r} is not one of binds, mounts, tmpfs")
        if m.propagation not in _PROPAGATIONS:
            raise InvalidArgument(f"mounts.propagation: invalid propagation mode {m.propagation!r}")
        if kind != "bind" and m.propagation:
            raise InvalidArgument("mounts.propagation: only bind mounts have a propagation mode")
        if kind != "volume" and (m.no_copy or m.volume_options or m.volume_driver):
            raise InvalidArgument("mounts.no_copy: volume options are only for type volume")
        if kind == "bind":
            if m.options:
                raise InvalidArgument("mounts.options: options are only for tmpfs")
            source = _abs_path(m.source, "mounts.source")
            if not os.path.exists(source):
                raise InvalidArgument(f"mounts.source: bind source path does not exist: {source}")
            out.append(MountSpec("bind", target, source, m.read_only, propagation=m.propagation, origin=m.origin))
        elif kind == "volume":
            if m.options:
                raise InvalidArgument("mounts.options: options are only for tmpfs")
            if m.source:
                volume_names.check_name(m.source, "mounts.source")
            elif m.read_only:  # docker's refusal too: nothing could ever write into it
                raise InvalidArgument("mounts.read_only: must not set ReadOnly mode when using anonymous volumes")
            out.append(MountSpec("volume", target, "", m.read_only, name=m.source, driver=m.volume_driver,
                                 no_copy=m.no_copy, origin=m.origin,
                                 volume_options=tuple(sorted(m.volume_options.items()))))
        else:
            if m.source:
                raise InvalidArgument("mounts.source: a tmpfs mount has no source")
            out.append(MountSpec("tmpfs", target, "", m.read_only, _tmpfs_options(m.options), origin=m.origin))
    return tuple(out)


def _tmpfs_options(opts: str) -> str:
    kept: list[str] = []
    for opt in filter(None, (o.strip() for o in opts.split(","))):
        key, _, value = opt.partition("=")
        if key == "size":
            kept.append(f"size={parse_size(value, 'mounts.options')}")
        elif key == "mode":
            if not re.fullmatch(r"[0-7]{3,4}", value):
                raise InvalidArgument(f"mounts.options: invalid tmpfs mode {value!r}")
            kept.append(opt)
        elif key in ("noexec", "exec", "nosuid", "suid", "nodev", "dev", "ro", "rw"):
            kept.append(key)
        else:
            raise InvalidArgument(f"mounts.options: unsupported tmpfs option {key!r}")
    return ",".join(kept)


def parse_size(value: str, field: str) -> int:
    m = re.fullmatch(r"(\d+)([bkmg]?)b?", value.strip().lower())
    if not m:
        raise InvalidArgument(f"{field}: invalid size {value!r}")
    return int(m.group(1)) * {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2)]


def _ports(spec: container_pb2.ContainerSpec) -> tuple[PortBinding, ...]:
    out: list[PortBinding] = []
    for p in spec.port_bindings:
        proto = p.protocol or "tcp"
        if proto not in ("tcp", "udp"):
            raise InvalidArgument(f"port_bindings.protocol: invalid protocol {proto!r}")
        if not 1 <= p.container_port <= 65535:
            raise InvalidArgument(f"port_bindings.container_port: invalid port {p.container_port}")
        if p.host_port > 65535:
            raise InvalidArgument(f"port_bindings.host_port: invalid port {p.host_port}")
        if p.host_ip:
            _ip(p.host_ip, "port_bindings.host_ip")
        out.append(PortBinding(p.container_port, proto, p.host_ip, p.host_port))
    return tuple(out)


def _ip(value: str, field: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidArgument(f"{field}: invalid IP address {value!r}")


def _caps(values: Iterable[str], field: str) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        name = v.upper().removeprefix("CAP_")
        if name != "ALL" and name not in KNOWN_CAPS:
            raise InvalidArgument(f"{field}: unknown capability {v!r}")
        out.append(name if name == "ALL" else "CAP_" + name)
    return tuple(out)


def _restart(spec: container_pb2.ContainerSpec) -> RestartPolicy:
    name = spec.restart_policy.name or "no"
    count = spec.restart_policy.maximum_retry_count
    if name not in RESTART_NAMES:
        raise InvalidArgument(f"restart_policy: invalid restart policy {name!r} (no, always, on-failure[:N], unless-stopped)")
    if count < 0:
        raise InvalidArgument("restart_policy.maximum_retry_count: must not be negative")
    if count and name != "on-failure":
        raise InvalidArgument(f"restart_policy.maximum_retry_count: cannot be used with restart policy {name!r}")
    if spec.auto_remove and name != "no":
        raise InvalidArgument("auto_remove: conflicting options: cannot auto-remove a container with a restart policy")
    return RestartPolicy(name, count)


def _exposed(img_ports: Any) -> tuple[str, ...]:
    if not img_ports:
        return ()
    keys = img_ports.keys() if isinstance(img_ports, Mapping) else img_ports
    return tuple(str(k) if "/" in str(k) else f"{k}/tcp" for k in keys)


def normalize(spec: container_pb2.ContainerSpec, image_ref: str, img: ImageConfigLike, cid: str, ncpu: int) -> Normalized:
    """Validate `spec` against its (already resolved) image; returns what create records."""
    warnings: list[str] = []
    name = check_name(spec.name) if spec.name else random_name()
    entrypoint, cmd = _command(spec, img)
    env = _env(img.env or (), spec.env)
    working_dir = spec.working_dir or img.working_dir or ""
    if working_dir:
        working_dir = _abs_path(working_dir, "working_dir")
    user = spec.user or img.user or ""
    if user and not USER_RE.match(user):
        raise InvalidArgument(f"user: invalid user {user!r}")
    hostname = spec.hostname or cid[:12]
    if len(hostname) > 63 or not HOSTNAME_RE.match(hostname):
        raise InvalidArgument(f"hostname: invalid hostname {hostname!r}")
    for key in spec.labels:
        if not key or "\0" in key:
            raise InvalidArgument("labels: invalid label key")
    network_mode = spec.network_mode or "bridge"
    if network_mode.startswith("container:"):
        if not network_mode[len("container:"):]:
            raise InvalidArgument("network_mode: container: needs a container name or id")
    elif network_mode not in ("bridge", "none", "host", "default") and not NETWORK_RE.match(network_mode):
        raise InvalidArgument(
            f"network_mode: invalid network {network_mode!r} (bridge, none, host, container:<name|id>, a network name)"
        )
    if network_mode == "default":
        network_mode = "bridge"
    aliases = tuple(spec.network_aliases)
    for alias in aliases:
        if len(alias) > 253 or not HOSTNAME_RE.match(alias):
            raise InvalidArgument(f"network_aliases: invalid alias {alias!r}")
    if aliases and (network_mode in ("bridge", "none", "host") or network_mode.startswith("container:")):
        raise InvalidArgument("network_aliases: network-scoped aliases are supported only on user-defined networks")
    ports = _ports(spec)
    if (ports or spec.publish_all) and (network_mode in ("none", "host") or network_mode.startswith("container:")):
        if network_mode == "host":
            warnings.append("published ports are discarded when using host network mode")
            ports = ()
        else:
            raise InvalidArgument(f"port_bindings: conflicting options: port publishing and the {network_mode} network mode")
    if spec.memory < 0 or 0 < spec.memory < MIN_MEMORY:
        raise InvalidArgument("memory: minimum memory limit allowed is 6MB")
    if spec.nano_cpus < 0 or (spec.nano_cpus and not 10_000_000 <= spec.nano_cpus <= ncpu * 1_000_000_000):
        raise InvalidArgument(f"nano_cpus: range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    stop_signal = signals.name(parse_signal(spec.stop_signal, "stop_signal")) if spec.stop_signal else ""
    if not stop_signal:
        stop_signal = signals.name(parse_signal(img.stop_signal, "stop_signal")) if img.stop_signal else "SIGTERM"
    stop_timeout: int | None = None
    if spec.HasField("stop_timeout"):
        if not -1 <= spec.stop_timeout <= MAX_STOP_TIMEOUT:
            raise InvalidArgument(f"stop_timeout: must be between -1 and {MAX_STOP_TIMEOUT} seconds")
        stop_timeout = spec.stop_timeout
    extra_hosts: list[str] = []
    for item in spec.extra_hosts:
        host, sep, ip = item.partition(":")
        if not sep or not host or not HOSTNAME_RE.match(host):
            raise InvalidArgument(f"extra_hosts: invalid host entry {item!r} (host:ip)")
        extra_hosts.append(f"{host}:{_ip(ip, 'extra_hosts')}")
    dns = tuple(_ip(d, "dns") for d in spec.dns)
    dns_search = netopts.dns_search(spec.dns_search)
    ip_address = netopts.fixed_ip(spec.ip_address, network_mode)
    mac_address = netopts.mac_address(spec.mac_address, network_mode)
    _ = _stdin_once(spec)  # checked before anything is built
    console_size = _console_size(spec)
    log_max_size = parse_size(spec.log_max_size, "log_max_size") if spec.log_max_size else 0
    if spec.log_max_file < 0 or (spec.log_max_file > 1 and not log_max_size):
        raise InvalidArgument("log_max_file: needs log_max_size and must be positive")
    log_driver = spec.log_driver or "json-file"
    if log_driver not in LOG_DRIVERS:
        raise InvalidArgument(f"log_driver: unknown log driver {log_driver!r} ({', '.join(LOG_DRIVERS)})")
    log_max_file = spec.log_max_file or 1
    if log_driver == "none" and (log_max_size or spec.log_max_file):
        raise InvalidArgument("log_driver: none takes no log options")
    if log_driver != "none" and not log_max_size:
        # the default cap (README): docker's json-file has none and fills disks
        log_max_size, log_max_file = DEFAULT_LOG_MAX_SIZE, spec.log_max_file or DEFAULT_LOG_MAX_FILE
    config = Config(
        hostname=hostname,
        image=image_ref,
        env=env,
        cmd=cmd,
        entrypoint=entrypoint,
        working_dir=working_dir,
        user=user,
        labels=tuple(sorted({**dict(img.labels or {}), **dict(spec.labels)}.items())),
        stop_signal=stop_signal,
        stop_timeout=stop_timeout,
        exposed_ports=_exposed(img.exposed_ports),
        tty=spec.tty,
        open_stdin=spec.open_stdin,
        stdin_once=_stdin_once(spec),
        attach_stdin=spec.open_stdin and spec.stdin_once,
        healthcheck=healthcheck.merge(spec, img.healthcheck),
    )
    host_config = HostConfig(
        network_mode=network_mode,
        port_bindings=ports,
        publish_all=spec.publish_all,
        mounts=_mounts(spec),
        memory=spec.memory,
        nano_cpus=spec.nano_cpus,
        pids_limit=limits.check_pids_limit(spec.pids_limit),
        restart_policy=_restart(spec),
        auto_remove=spec.auto_remove,
        read_only_rootfs=spec.read_only_rootfs,
        cap_add=_caps(spec.cap_add, "cap_add"),
        cap_drop=_caps(spec.cap_drop, "cap_drop"),
        extra_hosts=tuple(extra_hosts),
        network_aliases=aliases,
        dns=dns,
        dns_search=dns_search,
        ip_address=ip_address,
        mac_address=mac_address,
        log_max_size=log_max_size,
        log_max_file=log_max_file,
        log_driver=log_driver,
        log_opts=logopts.check(spec.log_opts, log_driver),
        security_opt=options.security_opts(spec.security_opt),
        privileged=spec.privileged,
        devices=devices.check(spec.devices),
        shm_size=limits.check_shm_size(spec.shm_size),
        ulimits=limits.check_ulimits(spec.ulimits),
        sysctls=limits.check_sysctls(spec.sysctls, network_mode),
        group_add=limits.check_group_add(spec.group_add),
        device_cgroup_rules=limits.check_device_cgroup_rules(spec.device_cgroup_rules),
        console_size=console_size,
        volumes_from=tuple(spec.volumes_from),
    )
    argv = entrypoint + cmd
    return Normalized(name, argv[0], argv[1:], config, host_config, tuple(warnings))


def _stdin_once(spec: container_pb2.ContainerSpec) -> bool:
    if spec.stdin_once and not spec.open_stdin:
        raise InvalidArgument("stdin_once: needs open_stdin (there is no stdin to close)")
    return spec.stdin_once


def _console_size(spec: container_pb2.ContainerSpec) -> tuple[int, int]:
    rows, cols = spec.console_rows, spec.console_cols
    if (rows, cols) == (0, 0):
        return 0, 0
    if not (1 <= rows <= MAX_CONSOLE and 1 <= cols <= MAX_CONSOLE):
        raise InvalidArgument(f"console_size: {rows}x{cols} is not a terminal size (1..{MAX_CONSOLE} rows and columns)")
    return rows, cols
