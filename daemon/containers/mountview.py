"""A container's mounts as docker's inspect shows them: the top-level `Mounts` (MountPoints),
HostConfig.Binds (-v as given), HostConfig.Mounts (--mount, docker's mount.Mount objects),
HostConfig.Tmpfs (--tmpfs) and Config.Volumes (anonymous -v paths and the image's VOLUMEs)."""

from __future__ import annotations

from typing import Any

from daemon.containers.record import Container, MountSpec


def mount_points(c: Container) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in c.host_config.mounts:
        if m.type == "bind":
            out.append({"Type": "bind", "Source": m.source, "Destination": m.target,
                        "Mode": "ro" if m.read_only and m.origin in ("", "binds") else "",
                        "RW": not m.read_only, "Propagation": m.propagation or "rprivate"})
        elif m.type == "volume":
            out.append({"Type": "volume", "Name": m.name, "Source": m.source, "Destination": m.target,
                        "Driver": m.driver or "local", "Mode": _volume_mode(m), "RW": not m.read_only,
                        "Propagation": ""})
        elif m.origin != "tmpfs":  # --tmpfs mounts are in HostConfig.Tmpfs only (docker)
            out.append({"Type": "tmpfs", "Source": "", "Destination": m.target, "Mode": "",
                        "RW": not m.read_only, "Propagation": ""})
    return sorted(out, key=lambda x: str(x["Destination"]))


def _volume_mode(m: MountSpec) -> str:
    if m.origin in ("image", "volumes-from") or (m.origin == "binds" and m.anonymous):
        return ""
    if m.origin == "binds":
        return "ro" if m.read_only else "z"
    return "z"


def host_fields(c: Container) -> dict[str, Any]:
    binds: list[str] = []
    mounts: list[dict[str, Any]] = []
    tmpfs: dict[str, str] = {}
    for m in c.host_config.mounts:
        if m.origin in ("", "binds") and m.type == "bind":
            binds.append(f"{m.source}:{m.target}" + _suffix(m))
        elif m.origin == "binds" and m.type == "volume" and not m.anonymous:
            binds.append(f"{m.name}:{m.target}" + _suffix(m))
        elif m.origin == "tmpfs" or (m.origin == "" and m.type == "tmpfs"):
            tmpfs[m.target] = m.options
        elif m.origin == "mounts":
            mounts.append(_mount_object(m))
    out: dict[str, Any] = {"Binds": binds or None, "VolumesFrom": list(c.host_config.volumes_from) or None}
    if mounts:  # omitempty in docker's HostConfig
        out["Mounts"] = mounts
    if tmpfs:
        out["Tmpfs"] = tmpfs
    return out


def _suffix(m: MountSpec) -> str:
    opts = (["ro"] if m.read_only else []) + ([m.propagation] if m.propagation else []) + (
        ["nocopy"] if m.no_copy else [])
    return ":" + ",".join(opts) if opts else ""


def _mount_object(m: MountSpec) -> dict[str, Any]:
    obj: dict[str, Any] = {"Type": m.type}
    source = "" if m.type == "volume" and m.anonymous else m.name if m.type == "volume" else m.source
    if source:  # omitempty, as the rest of docker's mount.Mount
        obj["Source"] = source
    obj["Target"] = m.target
    if m.read_only:
        obj["ReadOnly"] = True
    if m.type == "bind" and m.propagation:
        obj["BindOptions"] = {"Propagation": m.propagation}
    if m.type == "volume" and (m.no_copy or m.volume_options):
        vo: dict[str, Any] = {}
        if m.no_copy:
            vo["NoCopy"] = True
        # docker's CLI sends a DriverConfig (empty without volume-driver / volume-opt)
        vo["DriverConfig"] = {"Options": dict(m.volume_options)} if m.volume_options else {}
        obj["VolumeOptions"] = vo
    if m.type == "tmpfs" and m.options:
        to: dict[str, Any] = {}
        for opt in m.options.split(","):
            key, _, value = opt.partition("=")
            if key == "size":
                to["SizeBytes"] = int(value)
            elif key == "mode":
                to["Mode"] = int(value, 8)
        if to:
            obj["TmpfsOptions"] = to
    return obj


def config_volumes(c: Container) -> dict[str, Any] | None:
    vols: dict[str, Any] = {m.target: {} for m in c.host_config.mounts
            if m.type == "volume" and (m.origin == "image" or (m.origin == "binds" and m.anonymous))}
    return vols or None
