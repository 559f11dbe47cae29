"""One error taxonomy for every layer of ctrd.

No gRPC in here: domain code raises these, the wire layers translate them (errgrpc for gRPC,
the shim framing for the shim socket). Messages are lower-case and name the thing that failed.

    CtrdError
    ├── NotFound            the id, name, path or image does not exist
    ├── AlreadyExists       a name or id is taken
    ├── InvalidArgument     a field of a request is wrong (the message names the field)
    ├── FailedPrecondition  the object is in the wrong state (running, paused, in use)
    ├── Unavailable         a peer (daemon, shim) cannot be reached
    └── Internal            anything else

`reason` is an optional machine-readable detail that survives the wire (for example
"exec-not-found" lets a CLI pick docker's exit code 127 without matching message text).
"""

from __future__ import annotations

from typing import ClassVar

from ctrd import reasons


class CtrdError(Exception):
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason

    def __str__(self) -> str:
        return self.message


class NotFound(CtrdError):
    code = "not_found"


class AlreadyExists(CtrdError):
    code = "already_exists"


class InvalidArgument(CtrdError):
    code = "invalid_argument"


class FailedPrecondition(CtrdError):
    code = "failed_precondition"


class Unavailable(CtrdError):
    code = "unavailable"


class Internal(CtrdError):
    code = "internal"


# The reasons live in ctrd.reasons (the runtime shares them); these names keep errdefs callers short.
REASON_EXEC_NOT_FOUND = reasons.EXEC_NOT_FOUND
REASON_EXEC_NOT_INVOKABLE = reasons.EXEC_NOT_INVOKABLE
REASON_OOM = reasons.OOM
REASON_NO_SUCH_IMAGE = reasons.NO_SUCH_IMAGE

_BY_CODE: dict[str, type[CtrdError]] = {
    cls.code: cls for cls in (NotFound, AlreadyExists, InvalidArgument, FailedPrecondition, Unavailable, Internal)
}


def from_code(code: str, message: str, reason: str = "") -> CtrdError:
    """Rebuild an error from its wire form (code string, message, reason)."""
    return _BY_CODE.get(code, Internal)(message, reason=reason)
