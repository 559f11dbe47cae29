"""The child side: turn a freshly forked process into the container's init (or an exec'd process).

Setup order of a container's init (each step raises; any failure is sent to the parent as an
ERROR packet and the child exits without ever running the user's command):

  0. (parent) validate config.json, create the cgroup leaf and write its limits, open namespace
     files to join; unshare(CLONE_NEWPID) + fork + setns back to its own pid namespace, so the
     child is pid 1 of a new pid namespace and a direct child of the caller
  1. non-dumpable (PR_SET_DUMPABLE 0: no ptrace, no /proc/<pid>/exe or fd access from inside)
     until execve; imports disabled (sys.meta_path emptied: no container file is ever loaded as
     code); signal dispositions reset to default
  2. stdio dup2'd onto 0/1/2; every other inherited fd closed except the setup socket, the exec
     fifo and the namespace files to join
  3. cgroup placement: the parent writes the child's pid to each cgroup.procs right after fork,
     in parallel with the child's setup (a v1 migration may wait for an RCU grace period); the
     parent finishes it before it reads READY, so nothing of the user's ever runs outside the cgroup.
     On a v1 host the child is instead born in the hybrid unified leaf (clone3 CLONE_INTO_CGROUP)
     and moves itself into the v1 ones (each `tasks` file, "0", after PLACED and before
     pivot_root): no migration takes the global lock (runtime.create)
  4. namespaces: setns into those given by `path` (e.g. the daemon's persisted netns), then
     unshare the new ones (mount, uts, ipc, network); a new cgroup namespace is unshared only
     after the parent reports PLACED, so that it is rooted at the container's cgroup
  5. rootfs propagation (rprivate by default) on /, then bind the rootfs onto itself
  6. spec mounts in order (destinations resolved inside the rootfs; /proc, /sys never symlinks)
  7. /dev: standard nodes null zero full random urandom tty, spec devices, and the links
     fd stdin stdout stderr ptmx (devpts and shm are spec mounts)
  8. the cwd is created inside the rootfs if missing
     hooks: with prestart/createRuntime hooks, HOOKS to the parent and wait for HOOKS_DONE
     (the parent runs them in the runtime's namespaces, as runc); then the createContainer hooks
     here, in the container's namespaces, still seeing the host's filesystem
  9. pivot_root(".", ".") and detach the old root: the host filesystem is gone
 10. hostname
 11. sysctls (before read-only paths: they live in /proc/sys)
 12. read-only paths, then masked paths (a verified /dev/null bind, or a ro tmpfs for dirs),
     then the root remounted read-only if root.readonly
 12b. with process.terminal and a console socket: the pty from the container's devpts, its master
     sent on the socket, the slave as stdio and controlling terminal (runtime.console)
 13. oom_score_adj, rlimits, umask
 14. seccomp filter (linux.seccomp, compiled and cached by the parent) when no_new_privs is
     off: loading it then needs CAP_SYS_ADMIN, which is still there (runc's order);
     capability bounding set; user and groups (setgroups, setresgid, setresuid, keeping caps);
     effective/permitted/inheritable exactly as specified; ambient; then no_new_privs
 15. chdir to the cwd, checked to be inside the container; argv[0] looked up in the
     container's PATH (a missing command fails here, at create, like runc); the target (and its
     #! interpreters) must not be this runtime's own interpreter (CVE-2019-5736); then the
     seccomp filter when no_new_privs is on (as late as possible, as runc)
 16. (fds: only 0/1/2 survive execve; the setup socket and exec fifo are close-on-exec)
 17. READY to the parent; block until GO (library) or until the exec fifo is opened (CLI start)
     then the startContainer hooks (with the filter and the user's credentials, as runc); then
     EXEC to the parent (library; start() returns there)
 18. execve; if it fails the error goes to stderr and the init exits with 127 or 126

An exec'd process runs 1-3, joins every namespace of the init with setns (mount last; the
cgroup namespace after PLACED), then 12b-16 (with the container's seccomp filter), READY, waits for GO (sent once it is placed in the
cgroup) and 18, whose failure goes back to the parent (it sends no EXEC: its parent waits for the
socket's EOF at execve).
"""

from __future__ import annotations

import _socket
import fcntl
import os
import sys
import termios

from ctrd import reasons
from runtime import console, creds, fastjson, hooks, rootfs, sigs, userns
from runtime import syscalls as sc
from runtime.errors import CgroupError, ExecError, RuntimeErr, SpecError
from runtime.spec import Spec
from runtime.spec_process import ProcessSpec
from runtime.sync import Msg, Packet, recv, send, send_error
from runtime.value import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn, Protocol

    from runtime.syscalls import Syscalls

_ = fastjson  # the error path must not import anything: keep its encoder loaded (runtime.sync uses it)


class ChildConfig(Value):
    process: ProcessSpec
    stdio: tuple[int, int, int]
    sock_fd: int
    spec: Spec | None  # None: an exec into an existing container
    join: tuple[tuple[int, int], ...] = ()  # (fd, CLONE_NEW*) to setns, in order
    unshare_flags: int = 0
    cgroup_sources: tuple[tuple[str, str], ...] = ()
    fifo_fd: int = -1  # CLI mode: wait on the exec fifo instead of GO
    seccomp: SeccompLoader | None = None  # built in the parent; loaded in `setup` (see there)
    container_id: str = ""  # for the hooks' state
    console_fd: int = -1  # with process.terminal: the console socket the pty master is sent on
    # A user namespace (runtime.userns): the child is a first stage that makes (new_userns) or
    # joins it, then unshares pid_flags and clones the second stage.
    userns: bool = False
    new_userns: bool = False
    pid_flags: int = 0
    # The parent makes the container's cgroup while the child sets itself up (runtime.create):
    # the child waits for PLACED before its first step that needs it (see `setup`).
    placed_late: bool = False
    # v1 `tasks` files the child writes "0" to after PLACED, before pivot_root (it moves itself:
    # runtime.create says why); empty when the parent places it.
    self_place: tuple[str, ...] = ()


if TYPE_CHECKING:
    class SeccompLoader(Protocol):
        def load(self) -> None: ...


def describe(exc: BaseException) -> tuple[str, str, str]:
    """(kind, message, reason) for the ERROR packet."""
    if isinstance(exc, ExecError):
        return "exec", exc.message, exc.reason
    if isinstance(exc, CgroupError):
        return "cgroup", exc.message, exc.reason
    if isinstance(exc, SpecError):
        return "spec", exc.message, exc.reason
    if isinstance(exc, RuntimeErr):
        return "setup", exc.message, exc.reason
    if isinstance(exc, OSError):
        text = (exc.strerror or str(exc)).lower()
        where = f" {exc.filename}" if exc.filename else ""
        return "setup", f"container setup{where}: {text}", ""
    return "setup", f"container setup: {exc!r}", ""


# What _isolate_interpreter takes out of reach, kept alive until execve (see there).
_RETIRED: list[object] = []


def _isolate_interpreter() -> None:
    # No import may run from here on: after pivot_root, sys.path points into the container.
    sys.meta_path.clear()
    sys.path_hooks.clear()
    # Replaced, not cleared: clearing frees every path entry's finder and its cached directory
    # listing, and in this fork each reference count written copies a page shared with the
    # shim (1.0 of the init's ~4.8 ms of setup, timestamps in the init, 2026-12-06). With
    # meta_path empty no finder is consulted; the old dict just lives until execve.
    _RETIRED.append(sys.path_importer_cache)
    sys.path_importer_cache = {}
    sys.path.clear()
    sigs.reset_all()


def _stdio(fds: tuple[int, int, int]) -> None:
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in fds]
    for target, fd in enumerate(high):
        os.dup2(fd, target, inheritable=True)
    for fd in high:
        os.close(fd)


def _close_fds(keep: set[int]) -> None:
    lo = 3
    for fd in sorted(k for k in keep if k >= 3):
        if fd > lo:
            os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 1 << 20)


def setup_rootfs(s: Syscalls, spec: Spec, sources: tuple[tuple[str, str], ...],
                 before_pivot: Callable[[], None] | None = None,
                 before_cgroup: Callable[[], None] | None = None) -> None:
    """Steps 5-12."""
    rootfs.prepare_root(s, spec)
    rootfs.mount_all(s, spec, sources, before_cgroup)
    cwd = rootfs.resolve_in_root(spec.root, spec.process.cwd)
    if not os.path.lexists(cwd):
        rootfs.mkdir_all(s, spec.root, cwd)
    if before_pivot is not None:
        before_pivot()
    rootfs.pivot(s, spec.root)
    if spec.hostname:
        s.sethostname(spec.hostname)
    for key, value in spec.sysctl:
        s.write_file("/proc/sys/" + key.replace(".", "/"), value.encode())
    for p in spec.readonly_paths:
        rootfs.readonly_path(s, p)
    if spec.masked_paths:
        rootfs.verify_dev_null()
        for p in spec.masked_paths:
            rootfs.mask_path(s, p)
    if spec.root_readonly:
        rootfs.readonly_root(s)


def _hook_state(cfg: ChildConfig, status: str) -> bytes:
    assert cfg.spec is not None
    return hooks.state_json(cfg.container_id, os.getpid(), status, cfg.spec.bundle, dict(cfg.spec.annotations))


def _before_pivot(cfg: ChildConfig, sock: _socket.socket | None, placed: Callable[[], None]) -> None:
    assert cfg.spec is not None
    if cfg.self_place:
        placed()  # the host's cgroup files are out of reach after pivot_root; hooks see it placed
    h = cfg.spec.hooks
    if (h.prestart or h.createRuntime) and sock is not None:
        send(sock, Packet(Msg.HOOKS))
        pkt = recv(sock)
        if pkt is None or pkt.type != Msg.HOOKS_DONE:
            os._exit(1)  # a hook failed: the parent reports it and removes what was made
    if h.createContainer:
        hooks.run_all(h, "createContainer", _hook_state(cfg, "creating"))


def needs_placed(cfg: ChildConfig) -> bool:
    """Whether the child waits for PLACED (its cgroup is made after the fork, or it enters a
    cgroup namespace). Not with a user namespace: the second stage is cloned after the
    placement and inherits it."""
    if cfg.userns:
        return False
    return (cfg.placed_late or bool(cfg.self_place) or bool(cfg.unshare_flags & sc.CLONE_NEWCGROUP)
            or any(t == sc.CLONE_NEWCGROUP for _, t in cfg.join))


class _Placement:
    """PLACED, read once, where the child first needs its cgroup: before it enters a cgroup
    namespace, before it mounts the cgroup filesystem, or at the end of its setup at the latest
    (before pivot_root when it moves itself: the host's cgroup files are gone after it)."""

    def __init__(self, sock: _socket.socket | None, expected: bool, files: tuple[str, ...] = ()) -> None:
        self.sock = sock
        self.pending = expected
        self.files = files

    def __call__(self) -> None:
        if self.pending:
            self.pending = False
            _await_placed(self.sock)
            _move_self(self.files)


def _move_self(files: tuple[str, ...]) -> None:
    """Write "0" (this thread, which is the whole process) to each v1 `tasks` file: a
    migration of the caller's only thread, which the kernel does without the global
    cgroup_threadgroup_rwsem (and without its RCU grace period)."""
    for f in files:
        try:
            fd = os.open(f, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        except OSError as exc:
            raise CgroupError(f"cgroup: join {f}: {(exc.strerror or str(exc)).lower()}") from None


def _await_placed(sock: _socket.socket | None) -> None:
    if sock is None:
        return
    pkt = recv(sock)
    if pkt is None or pkt.type != Msg.PLACED:
        os._exit(1)  # the parent failed or went away


def setup(cfg: ChildConfig, s: Syscalls, sock: _socket.socket | None = None) -> tuple[str, list[str], dict[str, str]]:
    """Steps 4-15; returns what to execve. Separate from the fork so tests can drive it with a fake."""
    placed = _Placement(sock, needs_placed(cfg), cfg.self_place)
    for fd, nstype in cfg.join:
        if nstype == sc.CLONE_NEWCGROUP:
            placed()
        s.setns(fd, nstype)
        os.close(fd)
    if cfg.unshare_flags & ~sc.CLONE_NEWCGROUP:
        s.unshare(cfg.unshare_flags & ~sc.CLONE_NEWCGROUP)
    if cfg.unshare_flags & sc.CLONE_NEWCGROUP:
        placed()
        s.unshare(sc.CLONE_NEWCGROUP)
    if cfg.spec is not None:
        setup_rootfs(s, cfg.spec, cfg.cgroup_sources, lambda: _before_pivot(cfg, sock, placed), placed)
    placed()
    p = cfg.process
    if cfg.console_fd >= 0:
        # The pty of the container's own devpts (runc: after the mounts, before the
        # credentials, the seccomp filter and the cwd).
        console.setup_in_container(cfg.console_fd, p.console_size)
    if not cfg.userns:
        creds.limits(s, p)  # with a user namespace the first stage has set them (runtime.userns)
    env = creds.environ(p, creds.home_of(p.uid))
    if cfg.seccomp is not None and not p.no_new_privileges:
        # runc's order: without no_new_privs, installing a filter needs CAP_SYS_ADMIN, so it
        # goes in before the capabilities are dropped.
        cfg.seccomp.load()
    creds.identity(s, p)
    creds.enter_cwd(s, p.cwd)
    path = creds.lookup(p.args[0], env)
    creds.refuse_runtime_binary(p.args[0], path)
    if cfg.seccomp is not None and p.no_new_privileges:
        # With no_new_privs (set by identity), as late as possible: fewer of the runtime's own
        # syscalls have to be allowed by the profile.
        cfg.seccomp.load()
    return path, list(p.args), env


def _wait_start(sock: _socket.socket, fifo_fd: int) -> None:
    if fifo_fd >= 0:
        # Blocks until `start` opens the fifo for reading (runc's exec fifo).
        fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.close(fifo_fd)
        os.write(fd, b"0")
        os.close(fd)
        return
    pkt = recv(sock)
    if pkt is None or pkt.type != Msg.GO:
        os._exit(1)  # the parent went away (or aborted): never run the command


def child_main(cfg: ChildConfig, s: Syscalls | None = None) -> NoReturn:
    """Entry point right after fork; never returns."""
    code = 1
    sock = None
    try:
        s = s or sc.linux()
        s.prctl(sc.PR_SET_DUMPABLE, 0)
        _isolate_interpreter()
        sock = _socket.socket(fileno=cfg.sock_fd)
        _stdio(cfg.stdio)
        if cfg.process.terminal and cfg.console_fd < 0:
            # The caller's stdio is a pty slave: make it the controlling terminal of a new session.
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        # Everything inherited from the caller goes now, before any path is resolved: a leaked
        # host directory fd would let cwd=/proc/self/fd/N escape (CVE-2024-21626).
        _close_fds({cfg.sock_fd, cfg.fifo_fd, cfg.console_fd, *(fd for fd, _ in cfg.join)})
        if cfg.userns:
            left = userns.first_stage(s, cfg.join, cfg.pid_flags, cfg.new_userns, sock, cfg.process)
            cfg = cfg._replace(join=left)  # from here on: the second stage
        path, argv, env = setup(cfg, s, sock)
        send(sock, Packet(Msg.READY))
        _wait_start(sock, cfg.fifo_fd)
        if cfg.spec is not None and cfg.spec.hooks.startContainer:
            hooks.run_all(cfg.spec.hooks, "startContainer", _hook_state(cfg, "created"))
        creds.refuse_runtime_binary(argv[0], path)  # again after the wait: the file may have changed
        if cfg.spec is not None and cfg.fifo_fd < 0:
            # start() returns at EXEC instead of at the socket's close-on-exec EOF, which comes
            # only after the kernel has torn down this forked interpreter's address space:
            # ~2 ms of a start (timestamps in the helper and the init, 2026-12-07). What fails
            # from here on goes to stderr (the container's log), with no socket to report on.
            send(sock, Packet(Msg.EXEC))
            sock.close()
            sock = None
        try:
            os.execve(path, argv, env)
        except OSError as exc:
            err = creds.exec_error(argv[0], exc.errno or 0)
            code = reasons.exit_code(err.reason, 126)
            raise err from None
    except BaseException as exc:
        kind, message, reason = describe(exc)
        try:
            if sock is None:
                raise OSError
            send_error(sock, kind, message, reason)
        except OSError:
            try:
                os.write(2, f"ctrd-runtime: {message}\n".encode())
            except OSError:
                pass
    finally:
        os._exit(code)
