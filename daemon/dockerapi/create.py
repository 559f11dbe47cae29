"""POST /containers/create: docker's Config + HostConfig + NetworkingConfig → ctrd.v1 ContainerSpec.

Fields docker clients always send with their zero value are accepted; unknown fields are ignored
(docker does the same); a field ctrd does not support that is *set* is refused with one line naming
it (400), so nothing runs differently from what was asked.
"""

from __future__ import annotations

from typing import Any

from ctrd.errdefs import InvalidArgument
from ctrd.v1 import container_pb2 as pb
from daemon.dockerapi.params import strs

# HostConfig fields ctrd does not implement: refused when set to anything but their zero value.
UNSUPPORTED_HOST = (
    "Links", "OomScoreAdj", "PidMode", "UTSMode", "UsernsMode", "Cgroup",
    "StorageOpt", "CgroupParent", "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuShares", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod",
    "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "DeviceRequests", "KernelMemory", "KernelMemoryTCP",
    "MemoryReservation", "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth", "DnsOptions",
    "MaskedPaths", "ReadonlyPaths", "Annotations",
)
UNSUPPORTED_CONFIG = ("Domainname", "OnBuild")
_ZERO: tuple[Any, ...] = (None, 0, "", [], {}, False)


def _refuse(section: str, key: str, value: Any, why: str = "not supported by ctrd") -> InvalidArgument:
    return InvalidArgument(f"{section}.{key}: {why} (got {value!r})")


def _dict(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}: want an object")
    return value


def _int(value: Any, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{where}: want an integer, got {value!r}")
    return value


def spec_from_docker(body: Any, name: str) -> pb.ContainerSpec:
    if not isinstance(body, dict):
        raise InvalidArgument("request body: want a JSON object")
    cfg = body
    host = _dict(body.get("HostConfig"), "HostConfig")
    netcfg = _dict(body.get("NetworkingConfig"), "NetworkingConfig")
    for key in UNSUPPORTED_CONFIG:
        if cfg.get(key) not in _ZERO:
            raise _refuse("Config", key, cfg.get(key))
    for key in UNSUPPORTED_HOST:
        if host.get(key) not in _ZERO:
            raise _refuse("HostConfig", key, host.get(key))
    if host.get("Init"):
        raise _refuse("HostConfig", "Init", True)
    if host.get("OomKillDisable"):
        raise _refuse("HostConfig", "OomKillDisable", True)
    if _int(host.get("MemorySwap"), "HostConfig.MemorySwap") not in (0, -1):
        raise _refuse("HostConfig", "MemorySwap", host.get("MemorySwap"))
    if host.get("MemorySwappiness") not in (None, -1):
        raise _refuse("HostConfig", "MemorySwappiness", host.get("MemorySwappiness"))
    if host.get("IpcMode") not in (None, "", "private", "shareable"):
        raise _refuse("HostConfig", "IpcMode", host.get("IpcMode"))
    if host.get("CgroupnsMode") not in (None, "", "private", "host"):
        raise _refuse("HostConfig", "CgroupnsMode", host.get("CgroupnsMode"))
    if host.get("Runtime") not in (None, "", "runc", "ctrd-runtime"):
        raise _refuse("HostConfig", "Runtime", host.get("Runtime"))

    image = cfg.get("Image")
    if not isinstance(image, str) or not image:
        raise InvalidArgument("Config.Image: an image is required")
    s = pb.ContainerSpec(name=name, image=image)
    if cfg.get("Cmd") is not None:
        s.cmd.extend(strs(cfg["Cmd"], "Config.Cmd"))
        s.cmd_set = True
    if cfg.get("Entrypoint") is not None:
        ep = strs(cfg["Entrypoint"], "Config.Entrypoint")
        s.entrypoint.extend(ep or [""])
        s.entrypoint_set = True
    s.env.extend(strs(cfg.get("Env"), "Config.Env"))
    s.working_dir = cfg.get("WorkingDir") or ""
    s.user = cfg.get("User") or ""
    s.hostname = cfg.get("Hostname") or ""
    s.labels.update({str(k): str(v) for k, v in _dict(cfg.get("Labels"), "Config.Labels").items()})
    s.stop_signal = cfg.get("StopSignal") or ""
    if cfg.get("StopTimeout") is not None:
        s.stop_timeout = _int(cfg["StopTimeout"], "Config.StopTimeout")
    s.tty = bool(cfg.get("Tty"))
    s.open_stdin = bool(cfg.get("OpenStdin"))
    s.stdin_once = bool(cfg.get("StdinOnce")) and s.open_stdin
    _healthcheck(s, _dict(cfg.get("Healthcheck"), "Config.Healthcheck"))

    mode = host.get("NetworkMode") or ""
    if cfg.get("NetworkDisabled"):
        mode = "none"
    s.network_mode = "bridge" if mode in ("", "default") else mode
    _ports(s, host)
    s.publish_all = bool(host.get("PublishAllPorts"))
    _mounts(s, host, cfg)
    s.volumes_from.extend(strs(host.get("VolumesFrom"), "HostConfig.VolumesFrom"))
    s.read_only_rootfs = bool(host.get("ReadonlyRootfs"))
    s.memory = _int(host.get("Memory"), "HostConfig.Memory")
    s.nano_cpus = _int(host.get("NanoCpus"), "HostConfig.NanoCpus")
    pids = host.get("PidsLimit")
    if pids is not None:
        pids = _int(pids, "HostConfig.PidsLimit")
        s.pids_limit = -1 if pids <= 0 else pids  # docker: 0 or -1 = unlimited; ctrd: -1
    s.cap_add.extend(strs(host.get("CapAdd"), "HostConfig.CapAdd"))
    s.cap_drop.extend(strs(host.get("CapDrop"), "HostConfig.CapDrop"))
    rp = _dict(host.get("RestartPolicy"), "HostConfig.RestartPolicy")
    s.restart_policy.name = rp.get("Name") or "no"
    s.restart_policy.maximum_retry_count = _int(rp.get("MaximumRetryCount"), "HostConfig.RestartPolicy.MaximumRetryCount")
    s.extra_hosts.extend(h.replace("=", ":", 1) if ":" not in h else h for h in strs(host.get("ExtraHosts"), "HostConfig.ExtraHosts"))
    s.dns.extend(strs(host.get("Dns"), "HostConfig.Dns"))
    s.dns_search.extend(strs(host.get("DnsSearch"), "HostConfig.DnsSearch"))
    log = _dict(host.get("LogConfig"), "HostConfig.LogConfig")
    if log.get("Type") not in (None, "", "json-file", "local", "none"):
        raise _refuse("HostConfig", "LogConfig.Type", log.get("Type"), "log drivers: json-file, local, none")
    s.log_driver = "" if log.get("Type") == "json-file" else log.get("Type") or ""
    opts = _dict(log.get("Config"), "HostConfig.LogConfig.Config")
    for key in opts:
        if key not in ("max-size", "max-file"):
            raise _refuse("HostConfig", f"LogConfig.Config.{key}", opts[key])
    s.log_max_size = str(opts.get("max-size", ""))
    if opts.get("max-file"):
        try:
            s.log_max_file = int(opts["max-file"])
        except ValueError:
            raise InvalidArgument(f"HostConfig.LogConfig.Config.max-file: invalid number {opts['max-file']!r}") from None
    s.auto_remove = bool(host.get("AutoRemove"))
    s.security_opt.extend(strs(host.get("SecurityOpt"), "HostConfig.SecurityOpt"))
    s.privileged = bool(host.get("Privileged"))
    for d in host.get("Devices") or []:
        d = _dict(d, "HostConfig.Devices[]")
        s.devices.add(path_on_host=d.get("PathOnHost", ""), path_in_container=d.get("PathInContainer", ""),
                      cgroup_permissions=d.get("CgroupPermissions", ""))
    s.shm_size = _int(host.get("ShmSize"), "HostConfig.ShmSize")
    for u in host.get("Ulimits") or []:
        u = _dict(u, "HostConfig.Ulimits[]")
        s.ulimits.add(name=str(u.get("Name", "")), soft=_int(u.get("Soft"), "Ulimits.Soft"), hard=_int(u.get("Hard"), "Ulimits.Hard"))
    s.sysctls.update({str(k): str(v) for k, v in _dict(host.get("Sysctls"), "HostConfig.Sysctls").items()})
    s.group_add.extend(strs(host.get("GroupAdd"), "HostConfig.GroupAdd"))
    s.device_cgroup_rules.extend(strs(host.get("DeviceCgroupRules"), "HostConfig.DeviceCgroupRules"))
    if cfg.get("MacAddress"):
        s.mac_address = str(cfg["MacAddress"])
    _endpoints(s, _dict(netcfg.get("EndpointsConfig"), "NetworkingConfig.EndpointsConfig"))
    return s


def _healthcheck(s: pb.ContainerSpec, hc: dict[str, Any]) -> None:
    """docker's HealthConfig (durations in ns); Test ["NONE"] disables the image's."""
    if not hc:
        return
    test = strs(hc.get("Test"), "Config.Healthcheck.Test")
    if test == ["NONE"]:
        s.no_healthcheck = True
        return
    s.healthcheck.test.extend(test)
    s.healthcheck.interval = _int(hc.get("Interval"), "Config.Healthcheck.Interval")
    s.healthcheck.timeout = _int(hc.get("Timeout"), "Config.Healthcheck.Timeout")
    s.healthcheck.retries = _int(hc.get("Retries"), "Config.Healthcheck.Retries")
    s.healthcheck.start_period = _int(hc.get("StartPeriod"), "Config.Healthcheck.StartPeriod")
    s.healthcheck.start_interval = _int(hc.get("StartInterval"), "Config.Healthcheck.StartInterval")


def update_request(cid: str, body: Any) -> pb.UpdateRequest:
    """POST /containers/{id}/update: what ctrd can change (limits, restart policy); the rest refused when set."""
    if not isinstance(body, dict):
        raise InvalidArgument("request body: want a JSON object")
    for key in UNSUPPORTED_HOST:
        if body.get(key) not in _ZERO:
            raise _refuse("HostConfig", key, body.get(key))
    if _int(body.get("MemorySwap"), "MemorySwap") not in (0, -1):
        raise _refuse("HostConfig", "MemorySwap", body.get("MemorySwap"))
    req = pb.UpdateRequest(id=cid)
    if body.get("Memory"):
        req.memory = _int(body["Memory"], "Memory")
    if body.get("NanoCpus"):
        req.nano_cpus = _int(body["NanoCpus"], "NanoCpus")
    if body.get("PidsLimit") is not None:
        req.pids_limit = _int(body["PidsLimit"], "PidsLimit")
    rp = _dict(body.get("RestartPolicy"), "RestartPolicy")
    if rp.get("Name"):
        req.restart_policy.name = rp["Name"]
        req.restart_policy.maximum_retry_count = _int(rp.get("MaximumRetryCount"), "RestartPolicy.MaximumRetryCount")
    return req


def _ports(s: pb.ContainerSpec, host: dict[str, Any]) -> None:
    for key, bindings in _dict(host.get("PortBindings"), "HostConfig.PortBindings").items():
        port, _, proto = str(key).partition("/")
        try:
            cport = int(port)
        except ValueError:
            raise InvalidArgument(f"HostConfig.PortBindings: invalid port {key!r}") from None
        for bnd in bindings or [{}]:
            bnd = _dict(bnd, "HostConfig.PortBindings[]")
            hp = str(bnd.get("HostPort") or "0")
            if "-" in hp:
                raise _refuse("HostConfig", "PortBindings", hp, "host port ranges are not supported by ctrd")
            try:
                hport = int(hp)
            except ValueError:
                raise InvalidArgument(f"HostConfig.PortBindings: invalid host port {hp!r}") from None
            s.port_bindings.add(host_ip=bnd.get("HostIp") or "", host_port=hport, container_port=cport,
                                protocol=proto or "tcp")


PROPAGATION = ("rprivate", "private", "rshared", "shared", "rslave", "slave")


def _mounts(s: pb.ContainerSpec, host: dict[str, Any], cfg: dict[str, Any]) -> None:
    for bind in strs(host.get("Binds"), "HostConfig.Binds"):
        parts = bind.split(":")
        if len(parts) < 2 or len(parts) > 3:
            raise InvalidArgument(f"HostConfig.Binds: invalid bind {bind!r} (src:dst[:options])")
        src, dst = parts[0], parts[1]
        opts = parts[2].split(",") if len(parts) == 3 else []
        for o in opts:
            if o not in ("ro", "rw", "z", "Z", "nocopy", *PROPAGATION):
                raise _refuse("HostConfig", "Binds", bind, f"bind option {o!r} is not supported")
        if src.startswith("/"):
            prop = next((o for o in opts if o in PROPAGATION), "")
            s.mounts.add(type="bind", source=src, target=dst, read_only="ro" in opts, origin="binds", propagation=prop)
        else:  # a named volume
            s.mounts.add(type="volume", source=src, target=dst, read_only="ro" in opts, origin="binds",
                         no_copy="nocopy" in opts, volume_driver=host.get("VolumeDriver") or "")
    for target in _dict(cfg.get("Volumes"), "Config.Volumes"):  # anonymous volumes (-v /path, image VOLUME)
        if not any(m.target == target for m in s.mounts):
            s.mounts.add(type="volume", source="", target=str(target), origin="binds")
    for target, opts in _dict(host.get("Tmpfs"), "HostConfig.Tmpfs").items():
        s.mounts.add(type="tmpfs", target=str(target), options=str(opts or ""), origin="tmpfs")
    for m in host.get("Mounts") or []:
        m = _dict(m, "HostConfig.Mounts[]")
        kind = m.get("Type") or "volume"
        if kind == "bind":
            bo = _dict(m.get("BindOptions"), "HostConfig.Mounts[].BindOptions")
            s.mounts.add(type="bind", source=m.get("Source") or "", target=m.get("Target") or "",
                         read_only=bool(m.get("ReadOnly")), origin="mounts", propagation=bo.get("Propagation") or "")
        elif kind == "tmpfs":
            to = _dict(m.get("TmpfsOptions"), "HostConfig.Mounts[].TmpfsOptions")
            opts = []
            if to.get("SizeBytes"):
                opts.append(f"size={_int(to['SizeBytes'], 'TmpfsOptions.SizeBytes')}")
            if to.get("Mode"):
                opts.append(f"mode={_int(to['Mode'], 'TmpfsOptions.Mode'):o}")
            s.mounts.add(type="tmpfs", target=m.get("Target") or "", read_only=bool(m.get("ReadOnly")),
                         options=",".join(opts), origin="mounts")
        elif kind == "volume":
            vo = _dict(m.get("VolumeOptions"), "HostConfig.Mounts[].VolumeOptions")
            drv = _dict(vo.get("DriverConfig"), "HostConfig.Mounts[].VolumeOptions.DriverConfig")
            if vo.get("Labels"):
                raise _refuse("HostConfig", "Mounts[].VolumeOptions.Labels", vo["Labels"])
            mount = s.mounts.add(type="volume", source=m.get("Source") or "", target=m.get("Target") or "",
                                 read_only=bool(m.get("ReadOnly")), origin="mounts", no_copy=bool(vo.get("NoCopy")),
                                 volume_driver=drv.get("Name") or "")
            mount.volume_options.update({str(k): str(v) for k, v in _dict(drv.get("Options"), "DriverConfig.Options").items()})
        else:
            raise _refuse("HostConfig", "Mounts[].Type", kind, "only bind, volume and tmpfs mounts are supported by ctrd")


def _endpoints(s: pb.ContainerSpec, endpoints: dict[str, Any]) -> None:
    if not endpoints:
        return
    if len(endpoints) > 1:
        raise _refuse("NetworkingConfig", "EndpointsConfig", sorted(endpoints),
                      "one network at create; connect the others afterwards")
    (net, ep), = endpoints.items()
    ep = _dict(ep, f"NetworkingConfig.EndpointsConfig.{net}")
    if s.network_mode in ("bridge", "") and net not in ("bridge", "default"):
        s.network_mode = net
    builtin = s.network_mode in ("bridge", "none", "host") or s.network_mode.startswith("container:")
    # the CLI puts the container's short name among the aliases itself; docker drops it on builtin networks
    aliases = [a for a in strs(ep.get("Aliases"), "Aliases") if a and a != s.name]
    if aliases and not builtin:
        s.network_aliases.extend(aliases)
    if strs(ep.get("Links"), "Links"):
        raise _refuse("NetworkingConfig", "EndpointsConfig.Links", ep.get("Links"))
    ipam = _dict(ep.get("IPAMConfig"), "IPAMConfig")
    if ipam.get("IPv4Address"):
        s.ip_address = str(ipam["IPv4Address"])
    if ipam.get("IPv6Address"):
        raise _refuse("NetworkingConfig", "IPAMConfig.IPv6Address", ipam["IPv6Address"])
    if ep.get("MacAddress"):
        s.mac_address = str(ep["MacAddress"])
