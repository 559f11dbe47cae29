"""Running OCI hooks: the container's state JSON on stdin, `path` with `args` and `env`, bounded by
`timeout`; a hook that exits non-zero, is killed or times out raises SetupError naming it
(`hooks.prestart[0]: ...`) with the start of what it printed.

The same code runs in the runtime (prestart, createRuntime, poststart, poststop) and inside the
container's init (createContainer before pivot_root, startContainer right before execve). There no
module may be imported any more (init empties sys.meta_path) and the process is pid 1 of the
container, so this uses only what is loaded here: posix_spawn (no fork of a possibly threaded
caller), a pidfd and poll.
"""

from __future__ import annotations

import os
import select
import time

from runtime import fastjson, sigs
from runtime.errors import SetupError
from runtime.spec_hooks import Hook, Hooks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

MAX_OUTPUT = 4096  # how much of a failing hook's output goes into the error


def state_json(container_id: str, pid: int, status: str, bundle: str,
               annotations: Mapping[str, str]) -> bytes:
    """The runtime spec's state object, as runc hands it to hooks."""
    obj: dict[str, Any] = {"ociVersion": "1.0.2", "id": container_id, "status": status, "pid": pid,
                           "bundle": bundle}
    if annotations:
        obj["annotations"] = dict(annotations)
    return fastjson.dumps(obj).encode()


def run_all(hooks: Hooks, kind: str, state: bytes) -> None:
    """Run the hooks of `kind` in order; the first failure stops the rest and raises."""
    for hook in hooks.of(kind):
        run(hook, state)


def run_logged(hooks: Hooks, kind: str, state: bytes) -> list[str]:
    """Run every hook of `kind` even if some fail (poststop, as runc); return the failures."""
    failures = []
    for hook in hooks.of(kind):
        try:
            run(hook, state)
        except SetupError as exc:
            failures.append(exc.message)
    return failures


def run(hook: Hook, state: bytes) -> None:
    argv = list(hook.args) or [hook.path]
    env = dict(e.split("=", 1) for e in hook.env if "=" in e)
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            pid = os.posix_spawn(hook.path, argv, env, file_actions=[
                (os.POSIX_SPAWN_DUP2, stdin_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, out_w, 2)])
        except OSError as exc:
            raise SetupError(f"{hook.where}: cannot run {hook.path}: {(exc.strerror or str(exc)).lower()}")
        os.close(stdin_r)
        os.close(out_w)
        stdin_r = out_w = -1
        try:
            os.write(stdin_w, state)  # far below a pipe's buffer: never blocks
        except BrokenPipeError:
            pass  # a hook that does not read its stdin
        os.close(stdin_w)
        stdin_w = -1
        status, output = _wait(pid, out_r, hook)
    finally:
        for fd in (stdin_r, stdin_w, out_r, out_w):
            if fd >= 0:
                os.close(fd)
    if status != 0:
        what = f"exited with status {status}" if status > 0 else f"killed by signal {-status}"
        text = output.decode(errors="replace").strip()
        raise SetupError(f"{hook.where}: {hook.path} {what}" + (f": {text}" if text else ""))


def _wait(pid: int, out_fd: int, hook: Hook) -> tuple[int, bytes]:
    """Collect the hook's output until it exits; kill it at its timeout. Returns (exit code, or
    -signal, output)."""
    deadline = None if hook.timeout is None else time.monotonic() + hook.timeout
    pidfd = os.pidfd_open(pid)
    output = b""
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.register(out_fd, select.POLLIN)
        exited = False
        while not exited:
            wait_ms = -1 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            ready = poller.poll(wait_ms)
            if not ready:
                os.kill(pid, sigs.SIGKILL)
                os.waitpid(pid, 0)
                raise SetupError(f"{hook.where}: {hook.path} did not finish in {hook.timeout}s: killed")
            for fd, _ in ready:
                if fd == pidfd:
                    exited = True
                else:
                    chunk = os.read(out_fd, 65536)
                    if not chunk:
                        poller.unregister(out_fd)
                    elif len(output) < MAX_OUTPUT:
                        output += chunk[: MAX_OUTPUT - len(output)]
        # What the hook wrote just before it exited (a child it left behind may hold the pipe).
        os.set_blocking(out_fd, False)
        try:
            while len(output) < MAX_OUTPUT and (chunk := os.read(out_fd, 65536)):
                output += chunk[: MAX_OUTPUT - len(output)]
        except BlockingIOError:
            pass
    finally:
        os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output
