"""Parse and validate an OCI runtime-spec config.json into frozen records.

Unknown fields are ignored; a wrong value raises SpecError naming the field (`process.cwd`,
`linux.namespaces[2].type`, ...). Only what the runtime acts on is kept.
"""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime import caps, seccomp
from runtime import syscalls as sc
from runtime.errors import SpecError

NAMESPACE_FLAGS: dict[str, int] = {
    "pid": sc.CLONE_NEWPID,
    "network": sc.CLONE_NEWNET,
    "mount": sc.CLONE_NEWNS,
    "ipc": sc.CLONE_NEWIPC,
    "uts": sc.CLONE_NEWUTS,
    "cgroup": sc.CLONE_NEWCGROUP,
    "time": sc.CLONE_NEWTIME,
}
NS_PROC_NAMES: dict[str, str] = {
    "pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "cgroup": "cgroup", "time": "time",
}
MAX_ID = 2**31 - 1  # larger uids/gids are refused: they have been used to wrap to root (CVE-2024-40635)

_FLAGS: dict[str, tuple[bool, int]] = {  # option -> (clear?, flag)
    "ro": (False, sc.MS_RDONLY), "rw": (True, sc.MS_RDONLY),
    "nosuid": (False, sc.MS_NOSUID), "suid": (True, sc.MS_NOSUID),
    "nodev": (False, sc.MS_NODEV), "dev": (True, sc.MS_NODEV),
    "noexec": (False, sc.MS_NOEXEC), "exec": (True, sc.MS_NOEXEC),
    "sync": (False, sc.MS_SYNCHRONOUS), "async": (True, sc.MS_SYNCHRONOUS),
    "dirsync": (False, sc.MS_DIRSYNC), "remount": (False, sc.MS_REMOUNT),
    "mand": (False, sc.MS_MANDLOCK), "nomand": (True, sc.MS_MANDLOCK),
    "atime": (True, sc.MS_NOATIME), "noatime": (False, sc.MS_NOATIME),
    "diratime": (True, sc.MS_NODIRATIME), "nodiratime": (False, sc.MS_NODIRATIME),
    "bind": (False, sc.MS_BIND), "rbind": (False, sc.MS_BIND | sc.MS_REC),
    "relatime": (False, sc.MS_RELATIME), "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME), "nostrictatime": (True, sc.MS_STRICTATIME),
    "lazytime": (False, sc.MS_LAZYTIME), "nolazytime": (True, sc.MS_LAZYTIME),
    "nosymfollow": (False, sc.MS_NOSYMFOLLOW), "symfollow": (True, sc.MS_NOSYMFOLLOW),
}
PROPAGATION: dict[str, int] = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
RLIMITS: dict[str, int] = {
    name: getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")
}
RLIM_INFINITY = 2**64 - 1
PROC_BIND_ALLOWED = frozenset(
    f"/proc/{p}" for p in ("cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg", "slabinfo",
                           "sys/kernel/ns_last_pid", "sys/crypto/fips_enabled")
)


@dataclass(frozen=True, slots=True)
class Capabilities:
    bounding: tuple[str, ...] = ()
    effective: tuple[str, ...] = ()
    permitted: tuple[str, ...] = ()
    inheritable: tuple[str, ...] = ()
    ambient: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rlimit:
    type: int
    soft: int
    hard: int


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """The OCI `process` object, parsed."""

    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    umask: int | None = None
    capabilities: Capabilities | None = None  # None: leave the credentials' capabilities as they are
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    terminal: bool = False

    @classmethod
    def from_oci(cls, obj: Any, where: str = "process") -> ProcessSpec:
        p = _obj(obj, where)
        args = _strs(p.get("args"), f"{where}.args")
        if not args:
            raise SpecError(f"{where}.args", "must not be empty")
        if not args[0]:
            raise SpecError(f"{where}.args[0]", "must not be empty")
        env = _strs(p.get("env", []), f"{where}.env")
        for i, e in enumerate(env):
            if "=" not in e or e.startswith("="):
                raise SpecError(f"{where}.env[{i}]", f"{e!r} is not KEY=value")
        cwd = p.get("cwd", "/")
        if not isinstance(cwd, str) or not os.path.isabs(cwd):
            raise SpecError(f"{where}.cwd", f"{cwd!r} is not an absolute path")
        user = _obj(p.get("user", {}), f"{where}.user")
        uid = _id(user.get("uid", 0), f"{where}.user.uid")
        gid = _id(user.get("gid", 0), f"{where}.user.gid")
        raw_gids = user.get("additionalGids") or []
        if not isinstance(raw_gids, list):
            raise SpecError(f"{where}.user.additionalGids", "must be a list")
        gids = tuple(_id(g, f"{where}.user.additionalGids[{i}]") for i, g in enumerate(raw_gids))
        umask = user.get("umask")
        if umask is not None and (not isinstance(umask, int) or not 0 <= umask <= 0o777):
            raise SpecError(f"{where}.user.umask", f"{umask!r} is not a mode")
        capabilities = None
        if p.get("capabilities") is not None:
            c = _obj(p["capabilities"], f"{where}.capabilities")
            capabilities = Capabilities(
                **{k: _caps(c.get(k, []), f"{where}.capabilities.{k}")
                   for k in ("bounding", "effective", "permitted", "inheritable", "ambient")}
            )
        rlimits = []
        for i, r in enumerate(p.get("rlimits") or []):
            r = _obj(r, f"{where}.rlimits[{i}]")
            if r.get("type") not in RLIMITS:
                raise SpecError(f"{where}.rlimits[{i}].type", f"unknown rlimit {r.get('type')!r}")
            soft = _uint(r.get("soft"), f"{where}.rlimits[{i}].soft", 2**64 - 1)
            hard = _uint(r.get("hard"), f"{where}.rlimits[{i}].hard", 2**64 - 1)
            if soft > hard:
                raise SpecError(f"{where}.rlimits[{i}]", "soft limit is above the hard limit")
            rlimits.append(Rlimit(RLIMITS[r["type"]], _rlim(soft), _rlim(hard)))
        nnp = p.get("noNewPrivileges", False)
        if not isinstance(nnp, bool):
            raise SpecError(f"{where}.noNewPrivileges", "must be a boolean")
        oom = p.get("oomScoreAdj")
        if oom is not None and (not isinstance(oom, int) or isinstance(oom, bool) or not -1000 <= oom <= 1000):
            raise SpecError(f"{where}.oomScoreAdj", f"{oom!r} is not in -1000..1000")
        terminal = bool(p.get("terminal", False))
        return cls(tuple(args), tuple(env), cwd, uid, gid, gids, umask, capabilities, tuple(rlimits), nnp, oom, terminal)


@dataclass(frozen=True, slots=True)
class Mount:
    destination: str
    type: str
    source: str
    flags: int
    clear: int  # flags explicitly turned off (rw, suid, ...): matters for bind remounts
    propagation: tuple[int, ...]
    data: str

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & sc.MS_BIND) or self.type == "bind"


@dataclass(frozen=True, slots=True)
class Namespace:
    type: str
    path: str = ""

    @property
    def flag(self) -> int:
        return NAMESPACE_FLAGS[self.type]


@dataclass(frozen=True, slots=True)
class DeviceRule:
    allow: bool
    type: str  # a, c, b
    major: int  # -1 = *
    minor: int
    access: str


@dataclass(frozen=True, slots=True)
class Device:
    path: str
    type: str  # c, b, u, p
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class Resources:
    memory_limit: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpu_cpus: str | None = None
    pids_limit: int | None = None
    devices: tuple[DeviceRule, ...] = ()


@dataclass(frozen=True, slots=True)
class Spec:
    bundle: str
    process: ProcessSpec
    root: str  # absolute path of the rootfs
    root_readonly: bool = False
    hostname: str = ""
    mounts: tuple[Mount, ...] = ()
    namespaces: tuple[Namespace, ...] = ()
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources)
    cgroups_path: str = ""
    sysctl: tuple[tuple[str, str], ...] = ()
    devices: tuple[Device, ...] = ()
    rootfs_propagation: int = sc.MS_PRIVATE | sc.MS_REC
    annotations: tuple[tuple[str, str], ...] = ()
    oci_version: str = ""
    seccomp: seccomp.Profile | None = None

    def namespace(self, ns_type: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None


def load(bundle: str) -> Spec:
    """Read and validate <bundle>/config.json."""
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise SpecError("", f"{path} does not exist")
    except OSError as exc:
        raise SpecError("", f"cannot read {path}: {exc.strerror}")
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise SpecError("", f"{path} is not valid json: {exc}")
    return parse(obj, bundle)


def parse(obj: Any, bundle: str) -> Spec:
    top = _obj(obj, "config")
    if "process" not in top:
        raise SpecError("process", "is required")
    process = ProcessSpec.from_oci(top["process"])
    root = _obj(top.get("root"), "root")
    rpath = root.get("path")
    if not isinstance(rpath, str) or not rpath:
        raise SpecError("root.path", "is required")
    rpath = os.path.normpath(os.path.join(bundle, rpath))
    if not os.path.isdir(rpath):
        raise SpecError("root.path", f"{rpath} does not exist or is not a directory")
    hostname = top.get("hostname", "")
    if not isinstance(hostname, str) or len(hostname) > 64:
        raise SpecError("hostname", "must be a string of at most 64 characters")
    mounts = tuple(_mount(m, f"mounts[{i}]") for i, m in enumerate(top.get("mounts") or []))
    linux = _obj(top.get("linux", {}), "linux")
    namespaces: list[Namespace] = []
    for i, n in enumerate(linux.get("namespaces") or []):
        n = _obj(n, f"linux.namespaces[{i}]")
        t = n.get("type")
        if t == "user":
            raise SpecError(f"linux.namespaces[{i}].type", "user namespaces are not supported")
        if t not in NAMESPACE_FLAGS:
            raise SpecError(f"linux.namespaces[{i}].type", f"unknown namespace type {t!r}")
        if any(ns.type == t for ns in namespaces):
            raise SpecError(f"linux.namespaces[{i}].type", f"duplicate namespace {t!r}")
        p = n.get("path", "") or ""
        if not isinstance(p, str) or (p and not os.path.isabs(p)):
            raise SpecError(f"linux.namespaces[{i}].path", f"{p!r} is not an absolute path")
        namespaces.append(Namespace(t, p))
    if hostname and not any(ns.type == "uts" and not ns.path for ns in namespaces):
        raise SpecError("hostname", "needs a new uts namespace")
    cgroups_path = linux.get("cgroupsPath", "") or ""
    if not isinstance(cgroups_path, str) or ".." in cgroups_path.split("/"):
        raise SpecError("linux.cgroupsPath", f"{cgroups_path!r} is not a cgroup path")
    sysctl = _obj(linux.get("sysctl") or {}, "linux.sysctl")
    types = {ns.type for ns in namespaces}
    for k, v in sysctl.items():
        if not isinstance(v, str) or not k or "/" in k or ".." in k:
            raise SpecError(f"linux.sysctl.{k}", "must be a string value for a dotted key")
        # Like runc: a namespaced sysctl is only writable in a namespace of the container's own,
        # anything else would change the host.
        needs = _sysctl_namespace(k)
        if needs is None:
            raise SpecError(f"linux.sysctl.{k}", "is not a namespaced sysctl")
        if needs not in types:
            raise SpecError(f"linux.sysctl.{k}", f"needs its own {needs} namespace")
    propagation = linux.get("rootfsPropagation") or "rprivate"
    if propagation not in PROPAGATION:
        raise SpecError("linux.rootfsPropagation", f"unknown propagation {propagation!r}")
    annotations = _obj(top.get("annotations") or {}, "annotations")
    return Spec(
        bundle=bundle,
        process=process,
        root=rpath,
        root_readonly=bool(root.get("readonly", False)),
        hostname=hostname,
        mounts=mounts,
        namespaces=tuple(namespaces),
        masked_paths=_paths(linux.get("maskedPaths") or [], "linux.maskedPaths"),
        readonly_paths=_paths(linux.get("readonlyPaths") or [], "linux.readonlyPaths"),
        resources=_resources(linux.get("resources") or {}),
        cgroups_path=cgroups_path,
        sysctl=tuple(sorted(sysctl.items())),
        devices=tuple(_device(d, f"linux.devices[{i}]") for i, d in enumerate(linux.get("devices") or [])),
        rootfs_propagation=PROPAGATION[propagation],
        annotations=tuple(sorted((str(k), str(v)) for k, v in annotations.items())),
        oci_version=str(top.get("ociVersion", "")),
        seccomp=None if linux.get("seccomp") is None else seccomp.parse(linux["seccomp"]),
    )


_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
                "kernel.shmmni", "kernel.shm_rmid_forced")


def _sysctl_namespace(key: str) -> str | None:
    if key.startswith("net."):
        return "network"
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        return "ipc"
    if key in ("kernel.hostname", "kernel.domainname"):
        return "uts"
    return None


def parse_mount_options(options: list[str]) -> tuple[int, int, tuple[int, ...], str]:
    flags = clear = 0
    prop: list[int] = []
    data: list[str] = []
    for o in options:
        if o in _FLAGS:
            off, f = _FLAGS[o]
            if off:
                flags &= ~f
                clear |= f
            else:
                flags |= f
        elif o in PROPAGATION:
            prop.append(PROPAGATION[o])
        else:
            data.append(o)
    return flags, clear, tuple(prop), ",".join(data)


def _mount(m: Any, where: str) -> Mount:
    m = _obj(m, where)
    dest = m.get("destination")
    if not isinstance(dest, str) or not os.path.isabs(dest):
        raise SpecError(f"{where}.destination", f"{dest!r} is not an absolute path")
    mtype = m.get("type", "") or ""
    source = m.get("source", "") or ""
    if not isinstance(mtype, str) or not isinstance(source, str):
        raise SpecError(where, "type and source must be strings")
    opts = _strs(m.get("options", []) or [], f"{where}.options")
    flags, clear, prop, data = parse_mount_options(opts)
    if mtype == "bind":
        flags |= sc.MS_BIND
    if flags & sc.MS_BIND and not os.path.isabs(source):
        raise SpecError(f"{where}.source", f"{source!r} is not an absolute path")
    dest = os.path.normpath(dest)
    # Only procfs itself on /proc, and below it only the files lxcfs overlays: anything else could
    # shadow what the runtime or an LSM writes to (CVE-2019-16884).
    if (dest == "/proc" and mtype != "proc") or (
        dest.startswith("/proc/") and (not flags & sc.MS_BIND or dest not in PROC_BIND_ALLOWED)
    ):
        raise SpecError(f"{where}.destination", f"{dest} cannot be mounted over procfs")
    return Mount(dest, mtype, source, flags, clear, prop, data)


def resources_from_oci(r: Any) -> Resources:
    """The OCI `linux.resources` object (also the input of `update`)."""
    return _resources(r)


# /dev/null, zero, full, random, urandom, tty, console, ptmx and the pts nodes.
RUNTIME_DEVICES = tuple(
    DeviceRule(True, "c", major, minor, "rwm")
    for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (136, -1))
)


def _resources(r: Any) -> Resources:
    r = _obj(r, "linux.resources")
    mem = _obj(r.get("memory") or {}, "linux.resources.memory")
    cpu = _obj(r.get("cpu") or {}, "linux.resources.cpu")
    pids = _obj(r.get("pids") or {}, "linux.resources.pids")
    rules = []
    for i, d in enumerate(r.get("devices") or []):
        d = _obj(d, f"linux.resources.devices[{i}]")
        t = d.get("type", "a") or "a"
        access = d.get("access", "rwm") or "rwm"
        if t not in ("a", "c", "b") or not set(access) <= set("rwm"):
            raise SpecError(f"linux.resources.devices[{i}]", "type must be a, c or b and access a subset of rwm")
        major = d.get("major", -1)
        minor = d.get("minor", -1)
        rules.append(DeviceRule(bool(d.get("allow", False)), t, -1 if major is None else int(major),
                                -1 if minor is None else int(minor), access))
    if rules:
        # Like runc, the nodes the runtime itself creates in /dev stay usable whatever the spec
        # says (a `runc spec` bundle carries only "deny all"): without them the init's own mknod
        # of /dev/null fails once it has been moved into the cgroup.
        rules.extend(RUNTIME_DEVICES)
    return Resources(
        memory_limit=_limit(mem.get("limit"), "linux.resources.memory.limit"),
        memory_swap=_limit(mem.get("swap"), "linux.resources.memory.swap"),
        memory_reservation=_limit(mem.get("reservation"), "linux.resources.memory.reservation"),
        cpu_shares=_opt_int(cpu.get("shares"), "linux.resources.cpu.shares", 2, 262144),
        cpu_quota=_limit(cpu.get("quota"), "linux.resources.cpu.quota"),
        cpu_period=_opt_int(cpu.get("period"), "linux.resources.cpu.period", 1000, 1_000_000),
        cpu_cpus=cpu.get("cpus") or None,
        pids_limit=_limit(pids.get("limit"), "linux.resources.pids.limit"),
        devices=tuple(rules),
    )


def _device(d: Any, where: str) -> Device:
    d = _obj(d, where)
    path = d.get("path")
    if not isinstance(path, str) or not path.startswith("/dev/"):
        raise SpecError(f"{where}.path", f"{path!r} is not under /dev")
    t = d.get("type")
    if t not in ("c", "b", "u", "p"):
        raise SpecError(f"{where}.type", f"{t!r} is not c, b, u or p")
    return Device(path, t, int(d.get("major", 0)), int(d.get("minor", 0)), int(d.get("fileMode", 0o666)),
                  _id(d.get("uid", 0), f"{where}.uid"), _id(d.get("gid", 0), f"{where}.gid"))


def _obj(v: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(v, dict):
        raise SpecError(where, "must be an object")
    return v


def _strs(v: Any, where: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise SpecError(where, "must be a list of strings")
    return v


def _paths(v: Any, where: str) -> tuple[str, ...]:
    paths = _strs(v, where)
    for i, p in enumerate(paths):
        if not os.path.isabs(p):
            raise SpecError(f"{where}[{i}]", f"{p!r} is not an absolute path")
    return tuple(os.path.normpath(p) for p in paths)


def _id(v: Any, where: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_ID:
        raise SpecError(where, f"{v!r} is not an id in 0..{MAX_ID}")
    return v


def _uint(v: Any, where: str, top: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= top:
        raise SpecError(where, f"{v!r} is not an unsigned integer")
    return v


def _rlim(v: int) -> int:
    return resource.RLIM_INFINITY if v >= RLIM_INFINITY else v


def _limit(v: Any, where: str) -> int | None:
    if v is None or v == 0:  # 0 means "not set" in docker's and runc's specs
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < -1:
        raise SpecError(where, f"{v!r} is not a positive integer or -1")
    return v


def _opt_int(v: Any, where: str, lo: int, hi: int) -> int | None:
    if v is None or v == 0:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise SpecError(where, f"{v!r} is not in {lo}..{hi}")
    return v


def _caps(v: Any, where: str) -> tuple[str, ...]:
    names = _strs(v, where)
    for n in names:
        if n not in caps.NUMBERS:
            raise SpecError(where, f"unknown capability {n!r}")
    return tuple(dict.fromkeys(names))
