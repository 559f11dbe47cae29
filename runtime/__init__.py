"""The runc-like runtime: turns an OCI bundle into an isolated, hardened process (library and CLI).

Library (used in-process by the shim)::

    from runtime import Container, Stdio, ProcessSpec, Status, Stats, errors
    c = Container.create(bundle, "id", Stdio(0, 1, 2), state_dir=None)   # init set up, blocked
    c.start(); c.kill(signal.SIGTERM); c.pause(); c.resume(); c.exec(ProcessSpec.from_oci({...}), stdio)
    c.status(); c.stats(); c.pids(); c.oom_killed(); c.update(resources); c.delete()
    Container.load("id", state_dir=..., bundle=..., pid=...)

Modules: container (the verbs), create (fork a set-up init), exec_in (a process joining a
container), spawn (parent side of a fork), init (child side; the setup order is in its
docstring), sync (parent<->child protocol), rootfs, creds, cgroups (+ cgroup_v1, cgroup_v2,
cgroupfs), spec (config.json; its parts in spec_process, spec_rootfs, spec_resources,
spec_fields), defaults (docker's defaults, default_spec), state, syscalls (the kernel seam),
caps, errors, cli (`ctrd-runtime`, runc's command line).
"""

from runtime import errors
from runtime.container import Container, ProcessSpec, Stats, Status, Stdio

__all__ = ["Container", "ProcessSpec", "Stats", "Status", "Stdio", "errors"]
