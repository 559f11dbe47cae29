"""The container's terminal, made as runc makes it (`process.terminal: true`).

The pty comes from the container's own devpts instance (`/dev/pts/ptmx` of the
`newinstance,ptmxmode=0666,mode=0620,gid=5` mount), opened by the container's process after its
rootfs is in place (or, for an exec, after it has joined the container's mount namespace): the
slave is then `/dev/pts/N` inside the container, which a pty from the host's devpts is not
(`tty` there prints "not a tty"). The master goes to the caller over the console socket with
SCM_RIGHTS — runc's protocol, so containerd's shim and dockerd receive it unchanged — and the
slave becomes stdin, stdout, stderr and the controlling terminal of a new session.

Runs in the forked child after imports are cut off: everything it needs is imported here, at
module load.
"""

from __future__ import annotations

import _socket
import fcntl
import os
import struct
import termios

PTMX = "/dev/pts/ptmx"
TIOCSPTLCK = 0x40045431  # _IOW('T', 0x31, int): unlockpt (not in Python's termios)
TIOCGPTPEER = 0x5441  # open the peer of a master by fd, not by a path inside the container
_WINSIZE = "HHHH"  # rows, cols, xpixel, ypixel


def set_size(fd: int, rows: int, cols: int) -> None:
    """TIOCSWINSZ on a pty (either side): the foreground process group gets SIGWINCH."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack(_WINSIZE, rows, cols, 0, 0))


def get_size(fd: int) -> tuple[int, int]:
    """(rows, cols) of a terminal."""
    rows, cols, _, _ = struct.unpack(_WINSIZE, fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return rows, cols


def open_pty(ptmx: str = PTMX) -> tuple[int, int]:
    """(master, slave) of a new pty from the devpts that `ptmx` belongs to; both close-on-exec."""
    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlockpt
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        os.close(master)
        raise
    return master, slave


def send_master(console_fd: int, master: int, name: str = PTMX) -> None:
    """runc's console-socket message: the pty's name as data, the master as SCM_RIGHTS."""
    sock = _socket.socket(fileno=console_fd)
    try:
        # socket.send_fds's message, without the `socket` module (runtime.sigs says why)
        sock.sendmsg([name.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", master))])
    finally:
        sock.close()


def setup_in_container(console_fd: int, size: tuple[int, int] | None) -> None:
    """In the container's process: make its pty, send the master, take the slave as stdio and
    controlling terminal. Closes `console_fd`."""
    try:
        master, slave = open_pty()
    except BaseException:
        os.close(console_fd)
        raise
    try:
        if size is not None:
            set_size(master, *size)
        send_master(console_fd, master)
    finally:
        os.close(master)
    for target in (0, 1, 2):
        os.dup2(slave, target, inheritable=True)
    os.close(slave)
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def recv_master(sock: _socket.socket) -> int:
    """The receiving side of the console socket (the shim, tests): the master fd."""
    import socket

    _, fds, _, _ = socket.recv_fds(sock, 4096, 1)  # type: ignore[arg-type]  # any socket object does
    if not fds:
        raise OSError("console socket: no file descriptor received")
    for extra in fds[1:]:
        os.close(extra)
    return fds[0]
