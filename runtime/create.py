"""Create: validate the bundle and fork the container's init, set up and blocked before execve.

The parent side of the setup (namespaces to join or unshare, cgroup, exec fifo, the sync socket);
the child side is runtime.init. `runtime.container.Container.create` wraps the result.
"""

from __future__ import annotations

import os
import pwd

from ctrd import libc, timefmt
from runtime import cgroups, hooks, spawn, spec_hooks, state, sync, userns
from runtime import spec as spec_mod
from runtime import syscalls as sc
from runtime.errors import ContainerExists, RuntimeErr, SetupError, SpecError
from runtime.init import ChildConfig
from runtime.spawn import SETUP_TIMEOUT
from runtime.spec import Spec
from runtime.value import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from collections.abc import Callable

    from runtime import seccomp
    from runtime.cgroups import Cgroup
    from runtime.syscalls import Syscalls


class Created(Value):
    """A created container: its saved state, cgroup, the socket that releases its init (None
    when the exec fifo does), its parsed spec and the syscalls it was made with."""

    state: state.State
    cgroup: Cgroup
    sock: _socket.socket | None
    spec: Spec
    syscalls: Syscalls


def create_init(bundle: str | os.PathLike[str], container_id: str, stdio: tuple[int, int, int], *,
                state_dir: str | None, fifo: bool, console: int = -1, terminal: bool | None = None) -> Created:
    """Validate the bundle and fork the container's init, set up and blocked before execve.

    The init is a direct child of the caller (the caller reaps it). With `state_dir` the state
    is saved in <state_dir>/<id>/state.json; with `fifo`, `start` releases the init through the
    exec fifo (the CLI's create/start) instead of the socket. With process.terminal and a
    `console` socket (connected), the init makes its pty and sends the master on it (runtime.console).
    `terminal`: the process.terminal the caller expects (SpecError otherwise). On any error
    nothing is left."""
    state.check_id(container_id)
    spec = spec_mod.load(os.fspath(bundle))
    if terminal is not None and spec.process.terminal != terminal:
        raise SpecError("process.terminal", f"the request says {terminal}, the bundle {spec.bundle} says the opposite")
    filt = seccomp_loader(spec)  # compiled (or read from the cache) before the fork
    s = sc.linux()
    undo: list[Callable[[], None]] = []
    close: list[int] = []
    pid = 0
    parent_sock: _socket.socket | None = None
    try:
        sdir = None
        if state_dir:
            os.makedirs(state_dir, 0o711, exist_ok=True)
            sdir = state.container_dir(state_dir, container_id)
            try:
                os.mkdir(sdir, 0o711)
            except FileExistsError:
                raise ContainerExists(f"container {container_id} already exists")
            undo.append(lambda: state.remove(state_dir, container_id))
        join, pid_fd, unshare_flags, parent_flags = _namespaces(spec, close)
        user = spec.namespace("user")
        # With a user namespace the first stage makes the pid namespace from inside it (runtime.userns).
        pid_flags = parent_flags if user else 0
        if user:
            parent_flags = 0
        cgroups_path = spec.cgroups_path or f"/ctrd-runtime/{container_id}"
        cg = cgroups.for_path(cgroups_path)
        if user:  # the first stage clones the second once placed: the cgroup must exist first
            cg.create(spec.resources)
            undo.append(cg.destroy)
        # The child places itself (v1): born in the hybrid unified leaf, it writes "0" to each v1
        # hierarchy's `tasks` (runtime.init). A write of its pid to cgroup.procs by this process
        # takes the kernel's global cgroup_threadgroup_rwsem for writing, and the first writer
        # after a quiet spell waits for an RCU grace period: 5-16 ms here (2026-12-07, a fork
        # every 150 ms; `runc run` paid 11.2 ms of its run in that write), where a thread moving
        # itself, or a child born in its cgroup, takes no such lock: ~0.1 ms.
        cgroup_fd = -1
        self_place: tuple[str, ...] = ()
        if not user and libc.single_threaded():
            cgroup_fd, self_place = cg.self_placement()
            if cgroup_fd >= 0:
                close.append(cgroup_fd)
                undo.append(cg.drop_ahead)  # the leaf made ahead (the rest is destroy's, below)
        fifo_fd = -1
        if fifo and sdir:
            fifo_path = os.path.join(sdir, state.FIFO)
            os.mkfifo(fifo_path, 0o622)
            os.chmod(fifo_path, 0o622)
            fifo_fd = spawn.above_stdio(os.open(fifo_path, os.O_PATH | os.O_CLOEXEC))
            close.append(fifo_fd)
        console_fd = -1
        if console >= 0 and spec.process.terminal:
            console_fd = spawn.above_stdio(os.dup(console))
            close.append(console_fd)
        parent_sock, child_sock = sync.pair()
        close.append(spawn.above_stdio(child_sock.detach()))
        cfg = ChildConfig(
            console_fd=console_fd,
            process=spec.process,
            stdio=stdio,
            sock_fd=close[-1],
            spec=spec,
            join=tuple(join),
            unshare_flags=unshare_flags,
            cgroup_sources=tuple(cgroups.mount_sources(cg)),
            fifo_fd=fifo_fd,
            seccomp=filt,
            container_id=container_id,
            userns=user is not None,
            new_userns=user is not None and not user.path,
            pid_flags=pid_flags,
            placed_late=user is None,
            self_place=self_place,
        )
        try:
            pid = spawn.fork_child(s, parent_flags, pid_fd, cfg, cgroup_fd)
        except OSError:
            if cgroup_fd < 0:
                raise
            cfg = cfg._replace(self_place=())  # a kernel without CLONE_INTO_CGROUP: placed by pid
            pid = spawn.fork_child(s, parent_flags, pid_fd, cfg)
        for fd in close:
            os.close(fd)
        close.clear()
        parent_sock.settimeout(SETUP_TIMEOUT)
        if not user:
            # Made while the child isolates itself and mounts its rootfs: it waits for PLACED
            # before its first step that needs the cgroup (runtime.init.setup). ~1.6 ms of
            # directories and limit files off a start's path (timestamps from the runtime's
            # helper and the init, 2026-12-06, 2-core machine).
            cg.create(spec.resources)
            undo.append(cg.destroy)
        spawn.place(cg, pid, parent_sock, cfg)
        if cfg.userns:
            # On a failure `pid` stays the first stage's, reaped below like any failed child.
            pid = userns.follow(parent_sock, pid, spec.uid_mappings, spec.gid_mappings)
        pkt = _recv(parent_sock, container_id)
        if pkt is not None and pkt.type == sync.Msg.HOOKS:
            # The container's namespaces exist, its rootfs is mounted but not yet pivoted into.
            hook_state = hooks.state_json(container_id, pid, "creating", spec.bundle, dict(spec.annotations))
            hooks.run_all(spec.hooks, "prestart", hook_state)
            hooks.run_all(spec.hooks, "createRuntime", hook_state)
            sync.send(parent_sock, sync.Packet(sync.Msg.HOOKS_DONE))
            pkt = _recv(parent_sock, container_id)
        if pkt is None:
            raise SetupError(f"container {container_id}: init exited during setup")
        if pkt.type == sync.Msg.ERROR:
            raise pkt.error()
        st = state.State(
            id=container_id, pid=pid, start_time=state.proc_start_time(pid), bundle=spec.bundle,
            rootfs=spec.root, created=timefmt.now(), owner=owner(), cgroup_kind=cg.kind,
            cgroups_path=cgroups_path, cgroup_root=getattr(cg, "root", ""),
            annotations=dict(spec.annotations), fifo=fifo, hooks=spec_hooks.to_oci(spec.hooks),
        )
        if state_dir:
            state.save(state_dir, st)
        if fifo:
            parent_sock.close()
            parent_sock = None
        return Created(st, cg, parent_sock, spec, s)
    except BaseException as exc:
        for fd in close:
            try:
                os.close(fd)
            except OSError:
                pass
        if parent_sock is not None:
            parent_sock.close()
        if pid:
            spawn.reap_failed(pid)
        for fn in reversed(undo):
            try:
                fn()
            except RuntimeErr as left:
                # The setup error stays the one raised; what could not be undone (a cgroup that would
                # not go) is named with it, not swallowed.
                _name_leftover(exc, left)
        raise


def _name_leftover(exc: BaseException, left: RuntimeErr) -> None:
    if isinstance(exc, RuntimeErr):
        exc.message = f"{exc.message}; cleanup also failed: {left.message}"
    else:
        exc.add_note(f"cleanup also failed: {left.message}")


def seccomp_loader(spec: Spec) -> seccomp.Loader | None:
    if spec.seccomp is None:
        return None
    from runtime import seccomp  # with a profile only (runtime.spec says why)

    return seccomp.loader_for(spec.seccomp)


def _recv(sock: _socket.socket, container_id: str) -> sync.Packet | None:
    try:
        return sync.recv(sock)
    except TimeoutError:
        raise SetupError(f"container {container_id}: init did not finish setup in {SETUP_TIMEOUT:.0f}s")


def _namespaces(spec: Spec, close: list[int]) -> tuple[list[tuple[int, int]], int, int, int]:
    join: list[tuple[int, int]] = []
    pid_fd = -1
    unshare_flags = parent_flags = 0
    for i, ns in enumerate(spec.namespaces):
        if ns.path:
            fd = spawn.open_ns(ns.path, f"linux.namespaces[{i}].path", ns.flag)
            close.append(fd)
            if ns.type == "pid":
                pid_fd = fd
            else:
                join.append((fd, ns.flag))
        elif ns.type in ("pid", "time"):
            parent_flags |= ns.flag
        elif ns.type == "user":
            continue  # made by the first stage (runtime.userns)
        else:
            unshare_flags |= ns.flag
    if not spec.namespace("mount"):
        raise SpecError("linux.namespaces", "a new mount namespace is required")
    return join, pid_fd, unshare_flags, parent_flags




_OWNER: str | None = None


def owner() -> str:
    """The state's owner field: the caller's user name (runc's `owner`)."""
    global _OWNER
    if _OWNER is None:
        try:
            _OWNER = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            _OWNER = str(os.geteuid())
    return _OWNER
