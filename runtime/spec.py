"""Parse and validate an OCI runtime-spec config.json into frozen records.

Unknown fields are ignored; a wrong value raises SpecError naming the field (`process.cwd`,
`linux.namespaces[2].type`, ...). Only what the runtime acts on is kept. This module holds the
whole `Spec` and its namespaces; its parts are parsed beside it: the process (spec_process),
mounts and device nodes (spec_rootfs), resources (spec_resources), shared field checks
(spec_fields).
"""

from __future__ import annotations

import os

from runtime import fastjson
from runtime import syscalls as sc
from runtime.errors import SpecError
from runtime.spec_fields import as_object, paths
from runtime.spec_hooks import Hooks, hooks_from_oci
from runtime.spec_process import ProcessSpec
from runtime.spec_resources import Resources, resources_from_oci
from runtime.spec_rootfs import PROPAGATION, Device, Mount, device_from_oci, mount_from_oci
from runtime.spec_userns import IdMap, id_maps
from runtime.spec_userns import check as check_userns
from runtime.value import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from runtime import seccomp

NAMESPACE_FLAGS: dict[str, int] = {
    "pid": sc.CLONE_NEWPID,
    "network": sc.CLONE_NEWNET,
    "mount": sc.CLONE_NEWNS,
    "ipc": sc.CLONE_NEWIPC,
    "uts": sc.CLONE_NEWUTS,
    "cgroup": sc.CLONE_NEWCGROUP,
    "time": sc.CLONE_NEWTIME,
    "user": sc.CLONE_NEWUSER,
}
NS_PROC_NAMES: dict[str, str] = {
    "pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "cgroup": "cgroup", "time": "time",
    "user": "user",
}


class Namespace(Value):
    type: str
    path: str = ""

    @property
    def flag(self) -> int:
        return NAMESPACE_FLAGS[self.type]


class Spec(Value):
    bundle: str
    process: ProcessSpec
    root: str  # absolute path of the rootfs
    root_readonly: bool = False
    hostname: str = ""
    mounts: tuple[Mount, ...] = ()
    namespaces: tuple[Namespace, ...] = ()
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    resources: Resources = Resources()
    cgroups_path: str = ""
    sysctl: tuple[tuple[str, str], ...] = ()
    devices: tuple[Device, ...] = ()
    rootfs_propagation: int = sc.MS_PRIVATE | sc.MS_REC
    annotations: tuple[tuple[str, str], ...] = ()
    oci_version: str = ""
    seccomp: seccomp.Profile | None = None
    hooks: Hooks = Hooks()
    uid_mappings: tuple[IdMap, ...] = ()
    gid_mappings: tuple[IdMap, ...] = ()

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
        obj = fastjson.loads(raw.decode())
    except ValueError as exc:
        raise SpecError("", f"{path} is not valid json: {exc}")
    return parse(obj, bundle)


def parse(obj: Any, bundle: str) -> Spec:
    top = as_object(obj, "config")
    if "process" not in top:
        raise SpecError("process", "is required")
    process = ProcessSpec.from_oci(top["process"])
    root = as_object(top.get("root"), "root")
    rpath = root.get("path")
    if not isinstance(rpath, str) or not rpath:
        raise SpecError("root.path", "is required")
    rpath = os.path.normpath(os.path.join(bundle, rpath))
    if not os.path.isdir(rpath):
        raise SpecError("root.path", f"{rpath} does not exist or is not a directory")
    hostname = top.get("hostname", "")
    if not isinstance(hostname, str) or len(hostname) > 64:
        raise SpecError("hostname", "must be a string of at most 64 characters")
    mounts = tuple(mount_from_oci(m, f"mounts[{i}]") for i, m in enumerate(top.get("mounts") or []))
    linux = as_object(top.get("linux", {}), "linux")
    namespaces: list[Namespace] = []
    for i, n in enumerate(linux.get("namespaces") or []):
        n = as_object(n, f"linux.namespaces[{i}]")
        t = n.get("type")
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
    sysctl = as_object(linux.get("sysctl") or {}, "linux.sysctl")
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
    annotations = as_object(top.get("annotations") or {}, "annotations")
    uid_maps = id_maps(linux.get("uidMappings"), "linux.uidMappings")
    gid_maps = id_maps(linux.get("gidMappings"), "linux.gidMappings")
    userns = next((ns for ns in namespaces if ns.type == "user"), None)
    check_userns(userns is not None and not userns.path, userns is not None and bool(userns.path), uid_maps, gid_maps)
    return Spec(
        bundle=bundle,
        process=process,
        root=rpath,
        root_readonly=bool(root.get("readonly", False)),
        hostname=hostname,
        mounts=mounts,
        namespaces=tuple(namespaces),
        masked_paths=paths(linux.get("maskedPaths") or [], "linux.maskedPaths"),
        readonly_paths=paths(linux.get("readonlyPaths") or [], "linux.readonlyPaths"),
        resources=resources_from_oci(linux.get("resources") or {}),
        cgroups_path=cgroups_path,
        sysctl=tuple(sorted(sysctl.items())),
        devices=tuple(device_from_oci(d, f"linux.devices[{i}]") for i, d in enumerate(linux.get("devices") or [])),
        rootfs_propagation=PROPAGATION[propagation],
        annotations=tuple(sorted((str(k), str(v)) for k, v in annotations.items())),
        oci_version=str(top.get("ociVersion", "")),
        seccomp=None if linux.get("seccomp") is None else _seccomp_profile(linux["seccomp"]),
        hooks=hooks_from_oci(top.get("hooks")),
        uid_mappings=uid_maps,
        gid_mappings=gid_maps,
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


def _seccomp_profile(doc: Any) -> seccomp.Profile:
    # Imported on first use: `ctrd-runtime state/kill/delete` never parse a profile, and the
    # seccomp package (libseccomp binding, compiler, cache) is ~10 ms of a CLI call's imports.
    # The shim's launcher imports it before forking shims (runtime.container.preload).
    from runtime import seccomp

    return seccomp.parse_known(doc)
