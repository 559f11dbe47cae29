"""run/create flags -> ContainerSpec, exactly as container.proto documents each field.

Everything is validated here, before a channel is opened: a bad value raises UsageError (exit 125)
and nothing reaches the daemon.
"""

from __future__ import annotations

import argparse
import os

from ctrctl import flags, health, limits, mounts, security
from ctrctl.errors import UsageError, flag_error
from ctrd.v1 import container_pb2


def build_spec(args: argparse.Namespace, environ: dict[str, str] | os._Environ[str] | None = None,
               *, detach: bool = True) -> container_pb2.ContainerSpec:
    """The spec for `run`/`create`. `detach=False` (foreground run) leaves --rm to the client, except
    with -i/-t: that session learns the exit from the stream, and a detach (ctrl-p ctrl-q) must leave
    the container to the daemon's auto-remove, as docker."""
    interactive = bool(args.interactive or args.tty)
    if args.rm and args.restart and args.restart != "no":
        raise UsageError("conflicting options: cannot specify both --restart and --rm")
    if not args.image:
        raise UsageError("image reference must not be empty")
    spec = container_pb2.ContainerSpec(
        image=args.image,
        working_dir=args.workdir,
        user=args.user,
        hostname=args.hostname,
        network_mode=args.network,
        network_aliases=args.network_alias,
        publish_all=args.publish_all,
        read_only_rootfs=args.read_only,
        cap_add=args.cap_add,
        cap_drop=args.cap_drop,
        privileged=args.privileged,
        auto_remove=bool(args.rm and (detach or interactive)),
        tty=args.tty,
        open_stdin=args.interactive,
        # docker: the stdin of the client that attaches first (run/start -a -i) is the process's
        # stdin to its end; a detached `run -d -i` leaves it open for later `attach`es
        stdin_once=bool(args.interactive and not getattr(args, "detach", False)),
    )
    if args.tty:
        from ctrctl.tty import size

        # docker's ConsoleSize: the pty starts at the local terminal's size (a program that reads
        # it at once, like top, needs no resize to draw right)
        rows_cols = size(0) or size(1)
        if rows_cols is not None:
            spec.console_rows, spec.console_cols = rows_cols
    if args.name is not None:
        spec.name = flags.validate_name(args.name)
    if args.workdir and not args.workdir.startswith("/"):
        raise flag_error("-w, --workdir", args.workdir, "the working directory must be an absolute path")
    if args.command:
        spec.cmd.extend(args.command)
        spec.cmd_set = True
    if args.entrypoint is not None:
        # `--entrypoint ""` clears the image's entrypoint: [""] with entrypoint_set (docker).
        spec.entrypoint.append(args.entrypoint)
        spec.entrypoint_set = True
    spec.env.extend(flags.parse_env(args.env, args.env_file, environ))
    for key, value in flags.parse_labels(args.label).items():
        spec.labels[key] = value
    for raw in args.publish:
        for port in flags.parse_publish(raw):
            spec.port_bindings.add(host_ip=port.host_ip, host_port=port.host_port,
                                   container_port=port.container_port, protocol=port.protocol)
    wanted = [mounts.parse_volume(v) for v in args.volume]
    wanted += [mounts.parse_mount(m) for m in args.mount]
    wanted += [mounts.parse_tmpfs(t) for t in args.tmpfs]
    seen: set[str] = set()
    for m in wanted:
        if m.target in seen:
            raise UsageError(f"duplicate mount point: {m.target}")
        seen.add(m.target)
        spec.mounts.add(type=m.type, source=m.source, target=m.target, read_only=m.read_only, options=m.options,
                        origin=m.origin, no_copy=m.no_copy, propagation=m.propagation,
                        volume_driver=m.volume_driver, volume_options=dict(m.volume_options))
    spec.volumes_from.extend(mounts.parse_volumes_from(v) for v in args.volumes_from)
    if args.memory is not None:
        spec.memory = flags.parse_memory(args.memory)
    if args.cpus is not None:
        spec.nano_cpus = flags.parse_cpus(args.cpus)
    if args.pids_limit is not None:
        spec.pids_limit = flags.parse_int(args.pids_limit, "--pids-limit", minimum=-1)
        if spec.pids_limit == 0:  # docker: 0 means unlimited; on the wire 0 is "the default"
            spec.pids_limit = -1
    if args.stop_signal:
        spec.stop_signal = flags.parse_signal(args.stop_signal, "--stop-signal")
    if args.stop_timeout is not None:
        spec.stop_timeout = flags.parse_int(args.stop_timeout, "--stop-timeout", minimum=0)
    if args.restart:
        name, count = flags.parse_restart(args.restart)
        spec.restart_policy.name = name
        spec.restart_policy.maximum_retry_count = count
    spec.extra_hosts.extend(flags.parse_add_host(h) for h in args.add_host)
    spec.dns.extend(flags.parse_dns(d) for d in args.dns)
    spec.dns_search.extend(args.dns_search)
    spec.ip_address = args.ip
    spec.mac_address = args.mac_address
    spec.log_max_size, spec.log_max_file = flags.parse_log_opts(args.log_opt)
    spec.log_opts.update(flags.log_attr_opts(args.log_opt))
    spec.security_opt.extend(security.parse_security_opt(o) for o in args.security_opt)
    spec.devices.extend(security.parse_device(d) for d in args.device)
    spec.device_cgroup_rules.extend(limits.parse_device_cgroup_rule(r) for r in args.device_cgroup_rule)
    spec.ulimits.extend(limits.parse_ulimit(u) for u in args.ulimit)
    for raw in args.sysctl:
        key, value = limits.parse_sysctl(raw)
        spec.sysctls[key] = value
    if args.shm_size is not None:
        spec.shm_size = limits.parse_shm_size(args.shm_size)
    spec.group_add.extend(args.group_add)
    health.apply(spec, args)
    spec.log_driver = args.log_driver
    if args.log_driver == "none" and args.log_opt:
        raise UsageError("--log-opt: the none log driver takes no options")
    return spec
