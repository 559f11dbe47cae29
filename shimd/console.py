"""The shim's side of a terminal container: the console socket the runtime sends the pty master
on, and resizing that pty.

For the runtime library (forked and in-process backends) the console socket is one end of a
socketpair: the container's process makes its pty from the container's devpts and sends the
master before it reports READY, so by the time `create` returns, the master is queued on the
shim's end and `take_master` reads it without waiting.
"""

from __future__ import annotations

import _socket
import fcntl
import os
import socket
import struct
import termios

from ctrd import errdefs

MAX_SIZE = 10000  # rows or columns: anything larger is not a terminal anyone has
_FD = struct.Struct("i")
_MAX_FDS = 4  # a runtime sends one; more are taken and closed


def pair() -> tuple[int, int]:
    """(shim end, runtime end) of a new console socket; both close-on-exec."""
    a, b = _socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    return a.detach(), b.detach()


def take_master(fd: int, what: str) -> int:
    """The pty master queued on the shim's end of the console socket; closes `fd`.
    recvmsg on the C socket (socket.recv_fds is socket.py and array code each shim would run)."""
    sock = _socket.socket(fileno=fd)
    fds: list[int] = []
    try:
        sock.setblocking(False)
        try:
            _, ancdata, _, _ = sock.recvmsg(4096, _socket.CMSG_SPACE(_MAX_FDS * _FD.size))
        except BlockingIOError:
            ancdata = []
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                for at in range(0, len(data) - _FD.size + 1, _FD.size):
                    fds.append(_FD.unpack_from(data, at)[0])
    finally:
        sock.close()
    if not fds:
        raise errdefs.Internal(f"{what}: the runtime sent no pty master on the console socket")
    for extra in fds[1:]:
        os.close(extra)
    return fds[0]


class Listener:
    """A console socket on the filesystem, for an OCI runtime binary (`--console-socket PATH`):
    `<state-dir>/console/sock`, in a 0700 directory, removed on exit. The binary connects and
    sends the master before its `create` (or `exec --detach`) returns, so `forward` only takes
    what is queued and passes it on to the shim's end of a socketpair (one path for every backend)."""

    def __init__(self, state_dir: str, what: str) -> None:
        self.dir = f"{state_dir}/console"
        self.path = f"{self.dir}/sock"
        self.what = what
        self.sock: socket.socket | None = None
        self.close()  # what a shim killed mid-create left
        os.mkdir(self.dir, 0o700)
        self.sock = sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(self.path)
            sock.listen(1)
            sock.setblocking(False)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def forward(self, to_fd: int) -> None:
        assert self.sock is not None
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            raise errdefs.Internal(f"{self.what}: the runtime never connected to its console socket") from None
        master = take_master(conn.detach(), self.what)
        out = socket.socket(fileno=os.dup(to_fd))
        try:
            socket.send_fds(out, [b"/dev/ptmx"], [master])
        finally:
            out.close()
            os.close(master)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


def check_size(rows: int, cols: int) -> None:
    if not (0 < rows <= MAX_SIZE and 0 < cols <= MAX_SIZE):
        raise errdefs.InvalidArgument(f"size: {rows}x{cols} is not a terminal size (1..{MAX_SIZE} rows and columns)")


def resize(master: int, rows: int, cols: int) -> None:
    """TIOCSWINSZ on the master: the container's foreground process group gets SIGWINCH."""
    check_size(rows, cols)
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
