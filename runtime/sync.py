"""The parent <-> child setup protocol (the idea of runc's libcontainer/sync.go).

One SOCK_SEQPACKET socketpair, one small JSON object per packet, each with a `type`:

    parent (Container.create)                 child (runtime.init)
    [write pid to cgroup.procs] ............ [namespaces, rootfs, pivot_root, ..., resolve argv[0]]
    With a user namespace the forked child is a first stage (runtime.userns) before all that:
                          <-- USERNS {}       (joined the given namespaces, made or joined the userns)
    [write uid_map, gid_map] MAPPED {} -->    (after the cgroup placement: the second stage inherits it)
                          <-- PID {message}   (the second stage's host pid: pid 1 of the new pid
                                               namespace, the caller's child by CLONE_PARENT; the
                                               first stage exits, the caller reaps it; the rest of
                                               the exchange is with the second stage)
    (placement runs in parallel: a cgroup v1 migration can cost an RCU grace period)
    PLACED {}  -->                            (only awaited if the child unshares a cgroup namespace)
                          <-- HOOKS {}        (only with prestart/createRuntime hooks: before pivot_root)
    [run prestart, createRuntime hooks]
    HOOKS_DONE {}  -->                        (or the parent kills the child: a hook failed)
                                              [createContainer hooks, before pivot_root]
                          <-- READY {}        (or ERROR {kind, message, reason}: the child then exits)
    start():   GO {}      -->
                                              [startContainer hooks, the last check of argv[0]]
                          <-- EXEC {}         (or ERROR {...}: a hook or the check failed, the
                                               command never runs); start() returns here
                                              execve(argv): a failure now (a missing #!
                                              interpreter, a binary for another machine) is
                                              written to the container's stderr and ends the
                                              init with 127 or 126 (docker's codes); runc's
                                              start, too, returns before the exec

An exec'd process sends no EXEC: its parent waits for the EOF of the close-on-exec socket (EOF
means execve succeeded) or for ERROR (it failed: the command never ran).

In CLI mode (`ctrd-runtime create`) the creating process exits after READY; the child then waits
on the exec fifo instead of GO (like runc), and reports an execve failure on its stderr.
Packets are bounded (MAX_PACKET); an over-long or malformed packet is a protocol error.
"""

from __future__ import annotations

import _socket
import os

from runtime import fastjson
from runtime.errors import RuntimeErr, SetupError, from_kind
from runtime.value import Value

MAX_PACKET = 65536


class Msg:
    """The packets' types (plain strings: runtime.sigs says why not an enum)."""

    READY = "ready"
    GO = "go"
    PLACED = "placed"
    HOOKS = "hooks"  # child: namespaces and mounts are ready, run prestart/createRuntime now
    HOOKS_DONE = "hooks-done"
    USERNS = "userns"  # first stage: in the user namespace, waiting for its id maps
    MAPPED = "mapped"
    PID = "pid"  # first stage: the second stage's host pid (in `message`)
    EXEC = "exec"  # the init: released, execve next (start() need not wait for the exec)
    ERROR = "error"


_TYPES = frozenset(v for k, v in vars(Msg).items() if k.isupper())


class Packet(Value):
    type: str  # a Msg
    kind: str = ""
    message: str = ""
    reason: str = ""

    def error(self) -> RuntimeErr:
        return from_kind(self.kind, self.message, self.reason)


def pair() -> tuple[_socket.socket, _socket.socket]:
    """(parent end, child end); both close-on-exec. `_socket`'s objects, not `socket`'s: the
    same C socket without the module that wraps its constants in enums (runtime.sigs says why)."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)


def send(sock: _socket.socket, pkt: Packet) -> None:
    body = {"type": pkt.type}
    if pkt.type == Msg.ERROR:
        body.update(kind=pkt.kind, message=pkt.message[:4096], reason=pkt.reason)
    elif pkt.message:
        body["message"] = pkt.message
    sock.send(fastjson.dumps(body).encode(), _socket.MSG_NOSIGNAL)


def send_error(sock: _socket.socket, kind: str, message: str, reason: str = "") -> None:
    send(sock, Packet(Msg.ERROR, kind, message, reason))


def recv(sock: _socket.socket) -> Packet | None:
    """The next packet, or None at EOF (the peer closed or exec'd)."""
    try:
        raw = sock.recv(MAX_PACKET + 1)
    except ConnectionResetError:
        return None
    if not raw:
        return None
    if len(raw) > MAX_PACKET:
        raise SetupError("setup protocol: packet too long")
    try:
        body = fastjson.loads(raw.decode())
        kind = body["type"]
        if kind not in _TYPES:
            raise ValueError(kind)
    except (ValueError, KeyError, TypeError):
        raise SetupError("setup protocol: malformed packet")
    if kind == Msg.ERROR:
        return Packet(kind, str(body.get("kind", "")), str(body.get("message", "")), str(body.get("reason", "")))
    return Packet(kind, message=str(body.get("message", "")))


def close_quietly(*socks: _socket.socket | int | None) -> None:
    for s in socks:
        if s is None:
            continue
        try:
            if isinstance(s, int):
                os.close(s)
            else:
                s.close()
        except OSError:
            pass
