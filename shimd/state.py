"""The container lifecycle as seen by the shim: one enum, one transition table."""

from __future__ import annotations

import enum

from ctrd import errdefs
from ctrd.shim.v1 import shim_pb2


class Status(enum.Enum):
    NONE = "none"  # no Create yet
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    DELETED = "deleted"

    # by identity, as a member is its own only instance: Enum's __hash__ is Python code
    # (hash(self._name_)) that each table lookup would run, and so pages of each shim
    __hash__ = object.__hash__

    def to_proto(self) -> int:
        return _PROTO[self]


_PROTO = {
    Status.NONE: shim_pb2.STATUS_UNKNOWN,
    Status.CREATED: shim_pb2.STATUS_CREATED,
    Status.RUNNING: shim_pb2.STATUS_RUNNING,
    Status.PAUSED: shim_pb2.STATUS_PAUSED,
    Status.STOPPED: shim_pb2.STATUS_STOPPED,
    Status.DELETED: shim_pb2.STATUS_STOPPED,
}

# The verbs each status allows; "exit" is the init's death, which no state refuses.
_ALLOWED: dict[Status, frozenset[str]] = {
    Status.NONE: frozenset({"create"}),
    Status.CREATED: frozenset({"start", "kill", "stop", "delete", "exit"}),
    Status.RUNNING: frozenset({"kill", "stop", "pause", "exec", "exit"}),
    Status.PAUSED: frozenset({"resume", "kill", "stop", "exit"}),
    Status.STOPPED: frozenset({"delete", "stop"}),
    Status.DELETED: frozenset(),
}

_NEXT: dict[tuple[Status, str], Status] = {
    (Status.NONE, "create"): Status.CREATED,
    (Status.CREATED, "start"): Status.RUNNING,
    (Status.RUNNING, "pause"): Status.PAUSED,
    (Status.PAUSED, "resume"): Status.RUNNING,
    (Status.CREATED, "delete"): Status.DELETED,
    (Status.STOPPED, "delete"): Status.DELETED,
}


def check(status: Status, verb: str, container_id: str) -> None:
    """Raise unless `verb` is allowed in `status`."""
    if verb in _ALLOWED[status]:
        return
    if status is Status.NONE:
        raise errdefs.NotFound(f"container {container_id} is not created in this shim")
    if status is Status.DELETED:
        raise errdefs.NotFound(f"container {container_id} is deleted")
    raise errdefs.FailedPrecondition(f"cannot {verb} container {container_id}: it is {status.value}")


def transition(status: Status, verb: str, container_id: str) -> Status:
    """The one transition function: the status after `verb` succeeds."""
    check(status, verb, container_id)
    if verb == "exit":
        return Status.STOPPED
    return _NEXT.get((status, verb), status)
