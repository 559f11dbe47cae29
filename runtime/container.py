"""The runtime library: one `Container` with the same verbs as runc's command line.

Used in-process by the shim (a single-threaded subreaper): `create` forks the container's init as
a direct child of the caller, fully set up and blocked just before execve; `start` releases it.
The caller reaps; this module only ever waits for a child whose setup failed.
"""

from __future__ import annotations

import os
import time

from runtime import cgroups, sigs, state
from runtime.cgroupfs import Stats
from runtime.errors import (
    ContainerNotFound,
    IncorrectStatus,
    RuntimeErr,
    SetupError,
)
from runtime.record import Record

# What only some verbs need is imported in the verb, not here: `ctrd-runtime state|start|kill|
# delete` (one process per call from containerd/dockerd) would otherwise pay for the spec parser,
# the create/init/exec machinery, ctypes syscalls and hooks on every call. Measured on this
# machine (clean interpreter, no sandbox .pth; python -X importtime, 2026-12-06): `from
# runtime.cli import main` went from ~80 ms of imports to ~3 ms of our own modules for those verbs
# (runtime/cli.py has the wall-clock figures). The shim's
# launcher imports them all before it forks (`preload` below), so no container start pays.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket

    from runtime.cgroups import Cgroup
    from runtime.spec import Spec
    from runtime.spec_hooks import Hooks
    from runtime.spec_process import ProcessSpec
    from runtime.spec_resources import Resources
    from runtime.syscalls import Syscalls

__all__ = ["Container", "ProcessSpec", "Resources", "Stats", "Status", "Stdio"]


def __getattr__(name: str) -> object:
    # `runtime.container.ProcessSpec` / `.Resources` stay part of this module's API (the shim
    # uses them) without importing the spec modules for the verbs that never parse a spec.
    if name == "ProcessSpec":
        from runtime.spec_process import ProcessSpec

        return ProcessSpec
    if name == "Resources":
        from runtime.spec_resources import Resources

        return Resources
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Status:
    """A container's status: the strings runc's `state` reports. Plain strings, not an enum.Enum:
    `enum` (with functools and collections) is ~5 ms of each `ctrd-runtime` call here (python3 -S
    -c 'import enum' 12.5 vs 7.5 ms, hyperfine, 2026-12-06), which start/kill/delete otherwise need
    for nothing else."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class Stdio(Record):
    """File descriptors in the caller, dup2'd onto 0/1/2 in the container. With
    process.terminal, `console` is a connected console socket: the process makes its pty
    inside the container and sends the master on it, and the pty replaces the three.
    (runtime.record says why this is not a dataclass.)"""

    __slots__ = ("console", "stderr", "stdin", "stdout")
    stdin: int
    stdout: int
    stderr: int
    console: int

    def __init__(self, stdin: int, stdout: int, stderr: int, console: int = -1) -> None:
        self._set(stdin=stdin, stdout=stdout, stderr=stderr, console=console)


class Container:
    def __init__(self, st: state.State, cgroup: Cgroup, state_dir: str | None,
                 sock: _socket.socket | None = None, syscalls: Syscalls | None = None) -> None:
        self.id = st.id
        self.bundle = st.bundle
        self.rootfs = st.rootfs
        self.created = st.created
        self.cgroup = cgroup
        self._st = st
        self._state_dir = state_dir
        self._sock = sock
        self._started = st.started
        self._spec: Spec | None = None
        self._syscalls = syscalls  # runtime.syscalls (ctypes) is loaded by the verbs that use it
        self.hook_warnings: list[str] = []  # poststop hooks that failed in `delete`

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def create(cls, bundle: str | os.PathLike[str], container_id: str, stdio: Stdio, *,
               state_dir: str | None = None, terminal: bool | None = None) -> Container:
        """Validate the bundle and fork the init, set up and blocked before execve.

        The init is a direct child of the caller (the caller reaps it). With `state_dir`, the
        state is persisted in <state_dir>/<id>/state.json for `load`; without, nothing is
        written (the shim's fast path) and the cgroup leaf alone marks the id as taken.
        `terminal`: what the caller expects of process.terminal (a SpecError if the bundle says
        otherwise: a caller waiting for a pty master would wait for ever).
        Raises RuntimeErr (ExecError if argv[0] cannot be executed) and leaves nothing behind."""
        return cls._create(bundle, container_id, stdio, state_dir=state_dir, fifo=False, terminal=terminal)

    @classmethod
    def _create(cls, bundle: str | os.PathLike[str], container_id: str, stdio: Stdio, *,
                state_dir: str | None, fifo: bool, terminal: bool | None = None) -> Container:
        from runtime.create import create_init

        made = create_init(bundle, container_id, (stdio.stdin, stdio.stdout, stdio.stderr),
                           state_dir=state_dir, fifo=fifo, console=stdio.console, terminal=terminal)
        c = cls(made.state, made.cgroup, state_dir, made.sock, made.syscalls)
        c._spec = made.spec
        return c

    @classmethod
    def load(cls, container_id: str, *, state_dir: str | None = None, bundle: str | None = None,
             pid: int | None = None) -> Container:
        """Attach to an existing container, from its state file or from its bundle and init pid."""
        state.check_id(container_id)
        if state_dir and os.path.exists(os.path.join(state.container_dir(state_dir, container_id), state.STATE_FILE)):
            st = state.load(state_dir, container_id)
            # A CLI start that consumed the exec fifo but died before saving still counts as started.
            fifo = os.path.join(state.container_dir(state_dir, container_id), state.FIFO)
            if st.fifo and not st.started and not os.path.exists(fifo):
                st = _replace_started(st)
            cg = cgroups.from_state(st.cgroup_kind, st.cgroups_path, st.cgroup_root)
            return cls(st, cg, state_dir)
        if bundle is None:
            raise ContainerNotFound(f"container {container_id} does not exist")
        from runtime import spec as spec_mod
        from runtime.create import owner

        spec = spec_mod.load(bundle)
        cgroups_path = spec.cgroups_path or f"/ctrd-runtime/{container_id}"
        cg = cgroups.for_path(cgroups_path)
        start = state.proc_start_time(pid) if pid else -1
        st = state.State(id=container_id, pid=pid or 0, start_time=start, bundle=spec.bundle, rootfs=spec.root,
                         created="", owner=owner(), cgroup_kind=cg.kind, cgroups_path=cgroups_path,
                         started=True)
        c = cls(st, cg, None)
        c._spec = spec  # kept: delete's hooks and exec's process read it (a second parse was ~1 ms)
        return c

    # -- verbs --------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._st.pid

    def start(self) -> None:
        """Release the init into execve. Returns when the init is about to execve (its EXEC
        packet; runc's start, too, returns before the exec): an execve that fails after that
        ends the init with 127 or 126 and its message on the container's stderr. Raises what
        failed before (a startContainer hook, the last check of argv[0])."""
        if self.status() != Status.CREATED:
            raise IncorrectStatus(f"container {self.id} is {self.status()}, not created")
        if self._sock is not None:
            from runtime import sync

            sock, self._sock = self._sock, None
            try:
                sync.send(sock, sync.Packet(sync.Msg.GO))
                pkt = sync.recv(sock)
            except OSError as exc:
                raise SetupError(f"container {self.id}: init is gone before start") from exc
            finally:
                sock.close()
            if pkt is not None and pkt.type == sync.Msg.ERROR:
                raise pkt.error()
            if pkt is not None and pkt.type != sync.Msg.EXEC:
                raise SetupError(f"container {self.id}: start: unexpected {pkt.type} from the init")
        else:
            self._open_fifo()
        self._started = True
        if self._state_dir:
            self._st = _replace_started(self._st)
            state.save(self._state_dir, self._st)
        if self._has_hooks("poststart"):
            from runtime import hooks

            try:
                hooks.run_all(self._hooks(), "poststart", self._hook_state("running"))
            except SetupError:
                # runc: a failed poststart hook fails start and takes the container down.
                self._kill_init()
                raise

    def _open_fifo(self) -> None:
        if not self._state_dir:
            raise IncorrectStatus(f"container {self.id} cannot be started: no exec fifo")
        path = os.path.join(state.container_dir(self._state_dir, self.id), state.FIFO)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise IncorrectStatus(f"container {self.id} has already been started")
        import select

        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            deadline = time.monotonic() + state.SETUP_TIMEOUT
            while True:
                if poller.poll(50) and os.read(fd, 1):
                    break
                if state.proc_start_time(self.pid) < 0 or time.monotonic() > deadline:
                    raise SetupError(f"container {self.id}: init is gone before start")
        finally:
            os.close(fd)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def status(self) -> str:
        now = state.proc_start_time(self.pid) if self.pid else -1
        if now < 0 or (self._st.start_time > 0 and now != self._st.start_time):
            return Status.STOPPED
        if self.cgroup.frozen():
            return Status.PAUSED
        if not self._started:
            return Status.CREATED
        return Status.RUNNING

    def kill(self, sig: int, all: bool = False) -> None:
        if all:
            self.cgroup.kill_all(sig)
            return
        if self.status() == Status.STOPPED:
            raise IncorrectStatus(f"container {self.id} is not running")
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            raise IncorrectStatus(f"container {self.id} is not running")

    def pause(self) -> None:
        st = self.status()
        if st not in (Status.RUNNING, Status.CREATED):
            raise IncorrectStatus(f"container {self.id} is {st}, not running")
        self.cgroup.freeze()

    def resume(self) -> None:
        if self.status() != Status.PAUSED:
            raise IncorrectStatus(f"container {self.id} is not paused")
        self.cgroup.thaw()

    def update(self, resources: Resources) -> None:
        """Change the cgroup limits of a live container (runc update)."""
        if self.status() == Status.STOPPED:
            raise IncorrectStatus(f"container {self.id} is not running")
        self.cgroup.update(resources)

    def stats(self) -> Stats:
        return self.cgroup.stats()

    def pids(self) -> list[int]:
        return self.cgroup.pids()

    def oom_killed(self) -> bool:
        return self.cgroup.stats().oom_kills > 0

    def exec(self, process: ProcessSpec, stdio: Stdio) -> int:
        """Start a new process inside the container's namespaces and cgroup; return its host pid."""
        st = self.status()
        if st not in (Status.CREATED, Status.RUNNING):
            raise IncorrectStatus(f"container {self.id} is {st}, not running")
        if process.capabilities is None:
            # Unspecified means the container's own set (as runc exec), never the caller's full set.
            process = process._replace(capabilities=self._container_spec().process.capabilities)
        from runtime import syscalls as sc
        from runtime.create import seccomp_loader
        from runtime.exec_in import exec_in

        return exec_in(self.id, self.pid, self.cgroup, process, (stdio.stdin, stdio.stdout, stdio.stderr),
                       self._syscalls or sc.linux(),
                       seccomp_loader(self._container_spec()), console=stdio.console)

    def _container_spec(self) -> Spec:
        if self._spec is None:
            from runtime import spec as spec_mod

            self._spec = spec_mod.load(self.bundle)
        return self._spec

    def delete(self) -> None:
        """Kill whatever is left in the cgroup, remove the cgroup and the state; idempotent."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._kill_init()
        self.cgroup.destroy()
        h = self._hooks() if self._has_hooks("poststop") else None
        if self._state_dir:
            state.remove(self._state_dir, self.id)
        if h is not None and h.poststop:
            from runtime import hooks

            # runc: poststop failures are reported, never fail the delete.
            self.hook_warnings = hooks.run_logged(h, "poststop", self._hook_state("stopped"))

    def _kill_init(self) -> None:
        if self.pid and state.proc_start_time(self.pid) == self._st.start_time > 0:
            try:
                os.kill(self.pid, sigs.SIGKILL)
            except ProcessLookupError:
                pass

    def _has_hooks(self, kind: str) -> bool:
        """Whether `kind` (poststart, poststop: the OCI key is the attribute's name) has hooks,
        without the hook modules when a CLI container saved none (runtime.cli says why)."""
        if self._spec is None and self._state_dir:
            return bool((self._st.hooks or {}).get(kind))
        return bool(getattr(self._hooks(), kind))

    def _hooks(self) -> Hooks:
        if self._spec is not None:
            return self._spec.hooks
        from runtime.spec_hooks import Hooks, hooks_from_oci

        if self._state_dir:
            return hooks_from_oci(self._st.hooks or None)
        try:
            return self._container_spec().hooks
        except RuntimeErr:
            return Hooks()  # the bundle is gone: nothing left to run

    def _hook_state(self, status: str) -> bytes:
        from runtime import hooks

        return hooks.state_json(self.id, self.pid, status, self.bundle, self._st.annotations)

    def state(self) -> state.State:
        return self._st


def _replace_started(st: state.State) -> state.State:
    return st.replace(started=True)


def preload() -> None:
    """Import what the verbs otherwise import on first use (the seccomp package, for a spec with
    a profile, and the create/exec/hook machinery this module imports in its verbs) and warm what
    every create runs: the shim's launcher calls this before it forks shims, so that no
    container's start pays for an import, a dlopen or a first run of the parsing."""
    import select  # noqa: F401
    import shutil  # noqa: F401

    # runtime.cgroups imports its managers (cgroup_v1, cgroup_v2) on first use, as a CLI `state`
    # needs neither: without them here every shim's create helper imported cgroup_v1 and its two
    # helpers itself, ~3 ms of each start (measured 2026-12-06, monotonic timestamps in the
    # helper: 3.1 ms from for_path to the first mkdir, 0.05 ms once imported).
    from runtime import (  # noqa: F401
        cgroup_v1,
        cgroup_v2,
        create,
        exec_in,
        hooks,
        seccomp,
        spawn,
        spec,
        spec_hooks,
        sync,
        syscalls,
    )

    seccomp.supported()  # loads libseccomp (when installed): a shim never pays for its dlopen
    create.owner()  # the state's owner: one passwd lookup (NSS) for all shims, not one per create
    # The v1 hierarchies' mount points, read from /proc/self/mountinfo once for all shims: each
    # create helper read it again, 0.6 ms here and more with every mount the host adds (two per
    # running container). A hierarchy mounted after the daemon started is used from its next
    # start, as runc's own cgroup mounts are read once per runc process.
    if not os.path.exists(f"{cgroups.CGROUP_ROOT}/cgroup.controllers"):  # not a pure v2 host
        cgroup_v1.v1_mounts()
    _warm_parsing()


def _warm_parsing(rounds: int = 10) -> None:
    """Run the pure-Python part of a create (config.json parsing and validation, the state
    record) on docker's default spec, so that CPython 3.11 has specialised that bytecode in the
    launcher's pages before it forks: a shim's create helper otherwise runs it cold, rewriting
    (and so copying) those pages first (measured ~0.3 ms more per spec load in a fork)."""
    import json

    from ctrd import timefmt
    from runtime import defaults
    from runtime import spec as spec_mod
    from runtime.create import owner

    root = "/"  # any existing directory: parsing only checks that root.path is one; nothing is written
    doc = defaults.default_spec(["sh"])
    doc["root"] = {"path": root}
    raw = json.dumps(doc)
    for _ in range(rounds):
        spec = spec_mod.parse(json.loads(raw), root)
        st = state.State(id="warm", pid=1, start_time=state.proc_start_time(os.getpid()), bundle=root,
                         rootfs=spec.root, created=timefmt.now(), owner=owner(), cgroup_kind="v1",
                         cgroups_path="/warm", annotations=dict(spec.annotations))
        json.dumps(st.as_dict())


def warm_seccomp(doc: object) -> None:
    """Parse and compile (or read from the cache) the OCI `linux.seccomp` object `doc` and keep
    its loader in this process (runtime.seccomp.warm): the shim's launcher calls this with the
    daemon's default profile before it forks shims. Raises SpecError/SetupError for a bad one."""
    from runtime import seccomp

    seccomp.warm(doc)
