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

# The library's names resolve on first use: importing any runtime module (the `ctrd-runtime`
# entry point imports runtime.cli) runs this file, and an eager `from runtime.container import
# ...` here made every CLI call load the whole library (~70 ms of its ~150 ms; see
# runtime/container.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from runtime.container import Container, ProcessSpec, Stats, Status, Stdio

__all__ = ["Container", "ProcessSpec", "Stats", "Status", "Stdio", "errors"]


def __getattr__(name: str) -> object:
    if name in ("Container", "ProcessSpec", "Stats", "Status", "Stdio"):
        from runtime import container

        return getattr(container, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
