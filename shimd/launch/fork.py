"""Fork a detached shim: used by the pre-warmed launcher process and by `ctrd-shim start`.

The caller must be single-threaded with no running event loop (the launcher and the CLI are).
fork -> setsid (own session: kill -9 of the launcher or of the daemon leaves it alone) -> name
the process "ctrd-shim", become child subreaper, point stdio at /dev/null and shim.log, close
inherited fds, serve. The parent learns the outcome from a pipe: "ok <pid>" once the socket
listens, or "error <why>".
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module behind signal; no stubs
import contextlib
import ctypes
import gc
import json
import logging
import os
import re
import select
import signal
import socket
import sys
from pathlib import Path
from typing import Any, NoReturn

from ctrd import errdefs, ids, libc
from shimd import files, prctl
from shimd.backends.spare import Unwatched
from shimd.shim import serve

READY_TIMEOUT = 10.0
SUN_PATH_MAX = 107


def _alive(sock: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(str(sock))
        return True
    except OSError:
        return False
    finally:
        s.close()


def prepare(exec_root: Path, container_id: str) -> Path:
    state = files.state_dir_for(exec_root, container_id)
    sock = state / files.SOCKET_FILE
    if len(str(sock).encode()) > SUN_PATH_MAX:
        raise errdefs.InvalidArgument(f"exec root: socket path {sock} is longer than {SUN_PATH_MAX} bytes")
    (exec_root / "shims").mkdir(mode=0o700, parents=True, exist_ok=True)
    state.mkdir(mode=0o700, exist_ok=True)
    os.chmod(state, 0o700)
    if sock.exists() and _alive(sock):
        raise errdefs.AlreadyExists(f"a shim for container {container_id} is already running")
    for name in (files.SOCKET_FILE, files.PID_FILE, files.EXIT_FILE, files.RUNTIME_FILE):
        (state / name).unlink(missing_ok=True)
    return state


_SHIM_NAME = prctl.name_buffer(b"ctrd-shim")  # made before the fork: the child only passes it on
# libc's fork, called with the GIL held (PyDLL). os.fork() also runs CPython's after-fork work
# in the child (thread and lock re-init, random's reseed, logging's lock re-init...), which
# touches objects all over the launcher's heap and so copies their pages into every shim. None
# of it is needed here: the callers (the launcher, `ctrd-shim start`) are single-threaded and
# fork outside any import, lock or event loop, and a shim ends with os._exit (no interpreter
# shutdown walking thread state).
_libc_fork = libc.pyfork


def fork() -> int:
    pid = int(_libc_fork())
    if pid < 0:
        raise OSError(ctypes.get_errno(), "fork")
    return pid


def _become_shim(state: str | Path, ready_w: int, keep: tuple[int, ...] = ()) -> None:
    """`keep`: fds the shim keeps besides ready_w (a spare's create helper's socket and pipe)."""
    prctl.set_comm_from(_SHIM_NAME)
    prctl.set_child_subreaper(True)
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    log = os.open(f"{state}/shim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    low = 3
    for fd in sorted({ready_w, *keep}):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))
    os.set_inheritable(ready_w, False)


def _run_child(container_id: str, state: str | Path, ready_w: int, ok_line: bytes | None,
               helper: Unwatched | None = None) -> NoReturn:
    """In the forked child: become the shim and serve until it ends, then exit. `helper`: the
    create helper a spare shim forked while it waited (shimd.launch.spare)."""
    code = 1
    try:
        if os.getsid(0) != os.getpid():  # a spare made its session before it forked its helper
            os.setsid()
        _signal.signal(signal.SIGCHLD, _signal.SIG_DFL)  # the C call: signal.signal adds enum conversions
        _become_shim(state, ready_w, () if helper is None else (helper.ctl.fileno(), helper.answers))
        code = serve(container_id, state, ready_w, ok_line, helper)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(ready_w, f"error {exc}\n".encode())
    finally:
        os._exit(code)


def fork_shim(exec_root: Path, container_id: str) -> dict[str, Any]:
    """Fork one shim. One fork, not two: an intermediate process would run Python after the
    fork and hand the grandchild every page it dirtied (measured: ~0.4 MB per shim). The shim is
    a child of the caller only until the caller exits (the launcher sets SIGCHLD to SIG_IGN so
    shims that end never become zombies; `ctrd-shim start` exits at once). Its own session keeps
    it out of the caller's process group and terminal; kill -9 of the caller leaves it running."""
    state = prepare(exec_root, container_id)
    r, w = os.pipe()
    gc.freeze()  # what the caller allocated since the last launch: keep the child's GC off it
    sys.stdout.flush()
    sys.stderr.flush()
    pid = fork()
    if pid == 0:
        os.close(r)
        _run_child(container_id, state, w, None)
    os.close(w)
    try:
        msg = read_ready(r).decode(errors="replace").strip()
    finally:
        os.close(r)
    if not msg.startswith("ok "):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        raise errdefs.Internal(f"shim for container {container_id} failed to start: {msg or 'no answer'}")
    return {"address": f"unix://{state / files.SOCKET_FILE}", "pid": pid, "state_dir": str(state)}


def launch_result(exec_root: Path, container_id: str) -> dict[str, Any]:
    """`ctrd-shim start`: fork one shim; the launcher's answer as a JSON-able dict (an error
    becomes {"code", "message", "reason"})."""
    try:
        return fork_shim(exec_root, container_id)
    except errdefs.CtrdError as err:
        return {"code": err.code, "message": err.message, "reason": err.reason}
    except OSError as exc:
        return {"code": "internal", "message": f"launch shim {container_id}: {exc}"}


def configure_logging() -> None:
    """Shim logging (to shim.log, the shim's stderr): set up by whoever forks shims, before the
    fork, so the shim itself runs no logging setup."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s ctrd-shim[%(process)d] %(message)s")


def _answer(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj) + "\n").encode()


# The launcher's child runs this once per shim, so each object it touches costs that shim a
# copied page: the common case below uses bytes slicing, f-strings and os calls (no json, no
# pathlib, no exceptions: measured ~0.5 MB less per shim), anything unusual takes the general path.
_REQ_HEAD = b'{"id": "'
_REQ_TAIL = b'"}\n'
_PLAIN = re.compile(r'^[\x20\x21\x23-\x5b\x5d-\x7e]*$')  # printable ASCII but quote and backslash: no JSON escapes
_STALE = (files.SOCKET_FILE, files.PID_FILE, files.EXIT_FILE, files.RUNTIME_FILE)


def _lean_id(request: bytes) -> str | None:
    """The id of a request as ShimLauncher writes it (json.dumps({"id": id})), else None."""
    if request.startswith(_REQ_HEAD) and request.endswith(_REQ_TAIL):
        cid = request[len(_REQ_HEAD):-len(_REQ_TAIL)].decode("ascii", "replace")
        if ids.valid_id(cid):
            return cid
    return None


def _lean_prepare(root: str, container_id: str) -> str | None:
    """prepare() for the usual case (exec root and shims dir exist, no live shim of this id);
    None when something needs the general path."""
    shims = f"{root}/shims"
    state = f"{shims}/{container_id}"
    sock = f"{state}/{files.SOCKET_FILE}"
    if len(sock.encode()) > SUN_PATH_MAX or not os.access(shims, os.F_OK) or os.access(sock, os.F_OK):
        return None
    if os.access(state, os.F_OK):
        for name in _STALE:
            if os.access(f"{state}/{name}", os.F_OK):
                return None
    else:
        try:
            os.mkdir(state, 0o700)
        except FileExistsError:  # created between the check and here (the daemon may make it first)
            pass
    os.chmod(state, 0o700)
    return state


def launch_in_child(exec_root: Path, request: bytes, ready_w: int, helper: Unwatched | None = None) -> NoReturn:
    """The launcher's child: parse the request, prepare the state dir, become the shim. It
    writes the launcher's whole answer line (a JSON handle or error) to ready_w itself.
    `helper`: as _run_child's."""
    try:
        root = str(exec_root)
        container_id = _lean_id(request)
        lean = _lean_prepare(root, container_id) if container_id is not None and _PLAIN.match(root) else None
        if lean is not None and container_id is not None:
            ok = (f'{{"address": "unix://{lean}/{files.SOCKET_FILE}", "pid": {os.getpid()}, '
                  f'"state_dir": "{lean}"}}\n').encode()
            state: str | Path = lean  # a str: no pathlib in the shim's start path
        else:
            try:
                container_id = str(json.loads(request)["id"])
            except (ValueError, KeyError, TypeError) as exc:
                os.write(ready_w, _answer({"code": "invalid_argument", "message": f"launcher request: {exc}"}))
                os._exit(1)
            try:
                state = prepare(exec_root, container_id)
            except errdefs.CtrdError as err:
                os.write(ready_w, _answer({"code": err.code, "message": err.message, "reason": err.reason}))
                os._exit(1)
            except OSError as exc:
                os.write(ready_w, _answer({"code": "internal", "message": f"launch shim {container_id}: {exc}"}))
                os._exit(1)
            ok = _answer({"address": f"unix://{state / files.SOCKET_FILE}", "pid": os.getpid(),
                          "state_dir": str(state)})
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(ready_w, f"error {exc}\n".encode())
        os._exit(1)
    _run_child(container_id, state, ready_w, ok, helper)


def launch_forked(exec_root: Path, request: bytes) -> bytes:
    """The launcher's hot path: one request line in, one JSON answer line out.

    Every page the launcher writes after a fork stops being shared with the shims forked before
    (the launcher gets a fresh copy; the old one stays with them alone): whatever the launcher
    runs between two forks costs the previous shim that much private memory. So the launcher
    forks first and does nothing else: the child parses the request, prepares its state dir and
    writes the answer; the launcher only relays those bytes."""
    try:
        r, w = os.pipe()
    except OSError as exc:
        return _answer({"code": "internal", "message": f"launch shim {_request_id(request)}: {exc}"})
    try:
        pid = fork()
    except OSError as exc:
        os.close(r)
        os.close(w)
        return _answer({"code": "internal", "message": f"launch shim {_request_id(request)}: {exc}"})
    if pid == 0:
        os.close(r)
        launch_in_child(exec_root, request, w)
    os.close(w)
    try:
        data = read_ready(r)
    finally:
        os.close(r)
    return relay(pid, request, data)


def relay(pid: int, request: bytes, data: bytes) -> bytes:
    """The launcher's answer from what shim `pid` wrote on its ready pipe: its own JSON line, or
    an error (the shim is killed: it did not come up)."""
    if data.startswith(b"{") and data.endswith(b"\n"):
        return data
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    msg = data.decode(errors="replace").strip() or "no answer"
    return _answer({"code": "internal",
                    "message": f"shim for container {_request_id(request)} failed to start: {msg}"})


def _request_id(request: bytes) -> str:
    """The id for an error message (errors only: the launcher itself never parses requests)."""
    try:
        return str(json.loads(request)["id"])
    except (ValueError, KeyError, TypeError):
        return "?"


def read_ready(fd: int) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], READY_TIMEOUT)
        if not ready:
            break
        chunk = os.read(fd, 512)
        if not chunk:
            break
        data += chunk
    return data
