"""The container record: what `<root>/containers/<id>/config.v2.json` and `hostconfig.json` hold.

The JSON uses docker's key names so that the files read like docker's and inspect is a merge of
the two. Config and HostConfig never change after create; State, RestartCount and the network
settings change with the lifecycle and are rewritten (atomically) on every transition.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ctrd.timefmt import ZERO_TIME, parse_rfc3339, rfc3339
from daemon.containers.healthcheck import Healthcheck, HealthState
from daemon.containers.state import Status
from daemon.network.settings import NetworkSettings
from daemon.security.devices import DeviceMapping
from daemon.security.limits import DEFAULT_SHM_SIZE, Ulimit


@dataclass(frozen=True, slots=True)
class PortBinding:
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int = 0


@dataclass(frozen=True, slots=True)
class MountSpec:
    type: str  # bind | tmpfs | volume
    target: str
    source: str = ""  # bind: the host path; volume: the volume's _data (set at create)
    read_only: bool = False
    options: str = ""  # tmpfs options, e.g. "size=65536k,mode=1777"
    name: str = ""  # volume: its name
    driver: str = ""  # volume: its driver ("local")
    no_copy: bool = False  # volume: no copy-up of the image's content
    propagation: str = ""  # bind: "" = rprivate
    origin: str = ""  # binds (-v) | mounts (--mount) | tmpfs (--tmpfs) | image (VOLUME) | volumes-from
    anonymous: bool = False  # volume: made for this container (removed by rm -v)
    volume_options: tuple[tuple[str, str], ...] = ()  # volume-opt, for a volume made at create


def mount_from_json(d: dict[str, Any]) -> MountSpec:
    d = dict(d)
    d["volume_options"] = tuple((str(k), str(v)) for k, v in d.get("volume_options") or ())
    return MountSpec(**d)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    name: str = "no"  # no | always | on-failure | unless-stopped
    maximum_retry_count: int = 0


@dataclass(frozen=True, slots=True)
class Config:
    """docker's Config: how to run the process (image defaults already merged in)."""

    hostname: str
    image: str
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str = "SIGTERM"
    stop_timeout: int | None = None
    exposed_ports: tuple[str, ...] = ()
    tty: bool = False  # process.terminal: the shim owns the pty, the log has one stream
    open_stdin: bool = False  # stdin fed by attached clients (docker -i)
    stdin_once: bool = False  # stdin closed when the first attached client's stdin ends
    attach_stdin: bool = False  # docker's Config.AttachStdin: the creating client feeds stdin (-i, foreground)
    healthcheck: Healthcheck | None = None


@dataclass(frozen=True, slots=True)
class HostConfig:
    """docker's HostConfig: what the host provides (network, mounts, limits, policies)."""

    network_mode: str = "bridge"
    port_bindings: tuple[PortBinding, ...] = ()
    publish_all: bool = False
    mounts: tuple[MountSpec, ...] = ()
    memory: int = 0
    nano_cpus: int = 0
    pids_limit: int = 0
    restart_policy: RestartPolicy = RestartPolicy()
    auto_remove: bool = False
    read_only_rootfs: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    log_max_size: int = 0
    log_max_file: int = 1
    security_opt: tuple[str, ...] = ()
    privileged: bool = False
    devices: tuple[DeviceMapping, ...] = ()
    network_aliases: tuple[str, ...] = ()  # --network-alias: more names on a user network
    dns_search: tuple[str, ...] = ()
    ip_address: str = ""  # --ip: a fixed address on the user network
    mac_address: str = ""  # --mac-address: eth0's MAC
    shm_size: int = 0  # bytes of /dev/shm; 0 = the runtime default (64 MiB)
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    group_add: tuple[str, ...] = ()
    device_cgroup_rules: tuple[str, ...] = ()
    console_size: tuple[int, int] = (0, 0)  # (rows, cols) of a tty's first size; (0, 0) = none
    log_driver: str = "json-file"  # json-file | local | none
    log_opts: tuple[tuple[str, str], ...] = ()  # labels, env, ...: the entries' attrs (logopts.py)
    volumes_from: tuple[str, ...] = ()  # "<container>[:ro|rw]" as given


@dataclass(frozen=True, slots=True)
class State:
    status: Status = Status.CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0
    health: HealthState | None = None  # the last state read from the shim (containers with a healthcheck)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Status": self.status.value,
            "Running": self.status in (Status.RUNNING, Status.PAUSED),
            "Paused": self.status is Status.PAUSED,
            "Restarting": self.status is Status.RESTARTING,
            "OOMKilled": self.oom_killed,
            "Dead": self.status is Status.DEAD,
            "Pid": self.pid,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": rfc3339(self.started_at),
            "FinishedAt": rfc3339(self.finished_at),
        }
        if self.health is not None:
            out["Health"] = self.health.to_json()
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> State:
        return cls(
            status=Status(d.get("Status", "created")),
            pid=int(d.get("Pid", 0)),
            exit_code=int(d.get("ExitCode", 0)),
            error=str(d.get("Error", "")),
            oom_killed=bool(d.get("OOMKilled", False)),
            started_at=parse_rfc3339(d.get("StartedAt", ZERO_TIME)),
            finished_at=parse_rfc3339(d.get("FinishedAt", ZERO_TIME)),
            health=HealthState.from_json(d.get("Health")),
        )


@dataclass(slots=True, eq=False)
class Container:
    """One container: the persisted record plus the daemon's in-memory handles.

    Every field below `lock` is runtime-only. Mutations of the record happen while holding
    `lock` (the per-container serialization of lifecycle operations), and each is followed by a
    save of config.v2.json.
    """

    id: str
    name: str
    created: float
    path: str
    args: tuple[str, ...]
    image_id: str
    config: Config
    host_config: HostConfig
    state: State = State()
    restart_count: int = 0
    has_been_started_before: bool = False
    has_been_manually_stopped: bool = False
    network: NetworkSettings | None = None  # while it runs: what its network setup built
    shim_pid: int = 0
    log_path: str = ""
    # runtime only
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    # Made by the first waiter (`changed`), not with the record: most containers are never
    # waited on, and a Condition is two asyncio objects, a deque and three bound methods,
    # ~1.0 KB per container (tracemalloc, 200 sleeping containers, 2026-12-06).
    _changed: asyncio.Condition | None = field(default=None, init=False, repr=False)
    generation: int = 0  # bumped by every start: a watcher acts only on its own generation
    exit_seq: int = 0  # bumped by every recorded exit: Wait returns on the next one
    removed: bool = False
    removal_error: str = ""  # why the last removal failed: Wait "removed" returns with it (docker's)
    removal_failures: int = 0  # bumped by every failed removal: Wait "removed" returns on the next one

    @property
    def status(self) -> Status:
        return self.state.status

    def set_state(self, **changes: Any) -> None:
        self.state = dataclasses.replace(self.state, **changes)

    @property
    def changed(self) -> asyncio.Condition:
        """Notified on every state change (Wait, attach's exit, follow-mode logs wait on it)."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def notify(self) -> None:
        """Wake everyone waiting for a state change (Wait, Kill, follow-mode logs)."""
        changed = self._changed
        if changed is None:
            return  # nobody has waited on this container yet: nobody to wake
        async with changed:
            changed.notify_all()


# ---------------------------------------------------------------------------------- JSON codec


def config_to_json(c: Config) -> dict[str, Any]:
    return {
        "Hostname": c.hostname,
        "Env": list(c.env),
        "Cmd": list(c.cmd),
        "Entrypoint": list(c.entrypoint) if c.entrypoint else None,
        "WorkingDir": c.working_dir,
        "User": c.user,
        "Image": c.image,
        "Labels": dict(c.labels),
        "StopSignal": c.stop_signal,
        "StopTimeout": c.stop_timeout,
        "ExposedPorts": {p: {} for p in c.exposed_ports},
        "Tty": c.tty,
        "OpenStdin": c.open_stdin,
        "StdinOnce": c.stdin_once,
        "AttachStdin": c.attach_stdin,
        **({"Healthcheck": c.healthcheck.to_json()} if c.healthcheck is not None else {}),
    }


def config_from_json(d: dict[str, Any]) -> Config:
    return Config(
        hostname=d.get("Hostname", ""),
        image=d.get("Image", ""),
        env=tuple(d.get("Env") or ()),
        cmd=tuple(d.get("Cmd") or ()),
        entrypoint=tuple(d.get("Entrypoint") or ()),
        working_dir=d.get("WorkingDir", ""),
        user=d.get("User", ""),
        labels=tuple(sorted((d.get("Labels") or {}).items())),
        stop_signal=d.get("StopSignal", "SIGTERM"),
        stop_timeout=d.get("StopTimeout"),
        exposed_ports=tuple(d.get("ExposedPorts") or {}),
        tty=bool(d.get("Tty", False)),
        open_stdin=bool(d.get("OpenStdin", False)),
        stdin_once=bool(d.get("StdinOnce", False)),
        attach_stdin=bool(d.get("AttachStdin", False)),
        healthcheck=Healthcheck.from_json(d.get("Healthcheck")),
    )


def port_key(p: PortBinding) -> str:
    return f"{p.container_port}/{p.protocol}"


def host_config_to_json(h: HostConfig) -> dict[str, Any]:
    bindings: dict[str, list[dict[str, str]]] = {}
    for p in h.port_bindings:
        bindings.setdefault(port_key(p), []).append(
            {"HostIp": p.host_ip, "HostPort": str(p.host_port) if p.host_port else ""}
        )
    binds = [
        f"{m.source}:{m.target}" + (":ro" if m.read_only else "")
        for m in h.mounts if m.type == "bind" and m.origin in ("", "binds")
    ]
    out: dict[str, Any] = {
        "NetworkMode": h.network_mode,
        "PortBindings": bindings,
        "PublishAllPorts": h.publish_all,
        "Binds": binds or None,
        "Mounts": [dataclasses.asdict(m) for m in h.mounts],
        "Memory": h.memory,
        "NanoCpus": h.nano_cpus,
        "PidsLimit": h.pids_limit or None,
        "RestartPolicy": {"Name": h.restart_policy.name, "MaximumRetryCount": h.restart_policy.maximum_retry_count},
        "AutoRemove": h.auto_remove,
        "ReadonlyRootfs": h.read_only_rootfs,
        "CapAdd": list(h.cap_add) or None,
        "CapDrop": list(h.cap_drop) or None,
        "ExtraHosts": list(h.extra_hosts) or None,
        "Dns": list(h.dns),
        "DnsSearch": list(h.dns_search),
        "LogConfig": {
            "Type": h.log_driver,
            "Config": ({"max-size": str(h.log_max_size), "max-file": str(h.log_max_file)} if h.log_max_size else {})
            | dict(h.log_opts),
        },
        "SecurityOpt": list(h.security_opt) or None,
        "Privileged": h.privileged,
        "Devices": [{"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container,
                     "CgroupPermissions": d.cgroup_permissions} for d in h.devices],
        "ShmSize": h.shm_size or DEFAULT_SHM_SIZE,
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in h.ulimits] or None,
        "Sysctls": dict(h.sysctls) or None,
        "GroupAdd": list(h.group_add) or None,
        "DeviceCgroupRules": list(h.device_cgroup_rules) or None,
        "ConsoleSize": list(h.console_size),
        "VolumesFrom": list(h.volumes_from) or None,
    }
    if h.network_aliases:  # docker keeps them in NetworkingConfig; here beside NetworkMode
        out["NetworkAliases"] = list(h.network_aliases)
    if h.ip_address:  # docker: NetworkingConfig's IPAMConfig.IPv4Address
        out["IPv4Address"] = h.ip_address
    if h.mac_address:  # docker: Config.MacAddress
        out["MacAddress"] = h.mac_address
    return out


def host_config_from_json(d: dict[str, Any]) -> HostConfig:
    ports: list[PortBinding] = []
    for key, entries in (d.get("PortBindings") or {}).items():
        num, _, proto = key.partition("/")
        for e in entries or [{}]:
            hp = e.get("HostPort") or "0"
            ports.append(PortBinding(int(num), proto or "tcp", e.get("HostIp", ""), int(hp)))
    rp = d.get("RestartPolicy") or {}
    log_cfg = (d.get("LogConfig") or {}).get("Config") or {}
    return HostConfig(
        network_mode=d.get("NetworkMode", "bridge"),
        port_bindings=tuple(ports),
        publish_all=bool(d.get("PublishAllPorts", False)),
        mounts=tuple(mount_from_json(m) for m in d.get("Mounts") or ()),
        memory=int(d.get("Memory") or 0),
        nano_cpus=int(d.get("NanoCpus") or 0),
        pids_limit=int(d.get("PidsLimit") or 0),
        restart_policy=RestartPolicy(rp.get("Name", "no") or "no", int(rp.get("MaximumRetryCount", 0))),
        auto_remove=bool(d.get("AutoRemove", False)),
        read_only_rootfs=bool(d.get("ReadonlyRootfs", False)),
        cap_add=tuple(d.get("CapAdd") or ()),
        cap_drop=tuple(d.get("CapDrop") or ()),
        extra_hosts=tuple(d.get("ExtraHosts") or ()),
        dns=tuple(d.get("Dns") or ()),
        log_driver=str((d.get("LogConfig") or {}).get("Type") or "json-file"),
        log_max_size=int(log_cfg.get("max-size", 0)),
        log_max_file=int(log_cfg.get("max-file", 1)),
        log_opts=tuple(sorted((k, str(v)) for k, v in log_cfg.items() if k not in ("max-size", "max-file"))),
        security_opt=tuple(d.get("SecurityOpt") or ()),
        privileged=bool(d.get("Privileged", False)),
        devices=tuple(DeviceMapping(x.get("PathOnHost", ""), x.get("PathInContainer", ""),
                                    x.get("CgroupPermissions", "rwm")) for x in d.get("Devices") or ()),
        network_aliases=tuple(d.get("NetworkAliases") or ()),
        dns_search=tuple(d.get("DnsSearch") or ()),
        ip_address=str(d.get("IPv4Address") or ""),
        mac_address=str(d.get("MacAddress") or ""),
        shm_size=0 if int(d.get("ShmSize") or 0) == DEFAULT_SHM_SIZE else int(d.get("ShmSize") or 0),
        ulimits=tuple(Ulimit(u["Name"], int(u["Soft"]), int(u["Hard"])) for u in d.get("Ulimits") or ()),
        sysctls=tuple(sorted((d.get("Sysctls") or {}).items())),
        group_add=tuple(d.get("GroupAdd") or ()),
        device_cgroup_rules=tuple(d.get("DeviceCgroupRules") or ()),
        console_size=_console_size(d.get("ConsoleSize")),
        volumes_from=tuple(d.get("VolumesFrom") or ()),
    )


def to_json(c: Container) -> dict[str, Any]:
    """config.v2.json (everything except HostConfig)."""
    return {
        "ID": c.id,
        "Created": rfc3339(c.created),
        "Path": c.path,
        "Args": list(c.args),
        "Config": config_to_json(c.config),
        "State": c.state.to_json(),
        "Image": c.image_id,
        "NetworkSettings": c.network.to_dict() if c.network is not None else {},
        "LogPath": c.log_path,
        "Name": "/" + c.name,
        "Driver": "overlay2",
        "RestartCount": c.restart_count,
        "HasBeenStartedBefore": c.has_been_started_before,
        "HasBeenManuallyStopped": c.has_been_manually_stopped,
        "ShimPid": c.shim_pid,
    }


def from_json(d: dict[str, Any], host: dict[str, Any]) -> Container:
    return Container(
        id=d["ID"],
        name=str(d["Name"]).lstrip("/"),
        created=parse_rfc3339(d.get("Created", ZERO_TIME)),
        path=d.get("Path", ""),
        args=tuple(d.get("Args") or ()),
        image_id=d.get("Image", ""),
        config=config_from_json(d.get("Config") or {}),
        host_config=host_config_from_json(host),
        state=State.from_json(d.get("State") or {}),
        restart_count=int(d.get("RestartCount", 0)),
        has_been_started_before=bool(d.get("HasBeenStartedBefore", False)),
        has_been_manually_stopped=bool(d.get("HasBeenManuallyStopped", False)),
        network=NetworkSettings.from_dict(d["NetworkSettings"]) if d.get("NetworkSettings") else None,
        shim_pid=int(d.get("ShimPid", 0)),
        log_path=d.get("LogPath", ""),
    )


def _console_size(v: Any) -> tuple[int, int]:
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v):
        return int(v[0]), int(v[1])
    return 0, 0
