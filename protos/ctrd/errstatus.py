"""The error taxonomy ↔ gRPC status codes, as the wire numbers, with no grpc import.

The one table both sides share: the daemon's mapping (`ctrd.errgrpc`, on grpc.StatusCode) is built
from it, and ctrctl, which speaks gRPC without grpcio, maps statuses back with `from_status`.
"""

from __future__ import annotations

from ctrd import errdefs

REASON_KEY = "ctrd-reason"  # trailing metadata carrying errdefs' machine reason
# grpc-message travels percent-encoded in the trailers, and a client drops a response whose
# trailers exceed 8 KiB ("Stream removed"): a message echoing a huge id must be cut short
MAX_DETAILS = 1024

# gRPC status code numbers (grpc/doc/statuscodes.md)
OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS = range(7)
PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE = range(7, 12)
UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED = range(12, 17)

TO_STATUS: dict[type[errdefs.CtrdError], int] = {
    errdefs.NotFound: NOT_FOUND,
    errdefs.AlreadyExists: ALREADY_EXISTS,
    errdefs.InvalidArgument: INVALID_ARGUMENT,
    errdefs.FailedPrecondition: FAILED_PRECONDITION,
    errdefs.Unavailable: UNAVAILABLE,
    errdefs.Internal: INTERNAL,
}
_FROM_STATUS: dict[int, type[errdefs.CtrdError]] = {v: k for k, v in TO_STATUS.items()}


def cap(message: str) -> str:
    raw = message.encode()
    if len(raw) <= MAX_DETAILS:
        return message
    return raw[:MAX_DETAILS].decode(errors="ignore") + "... (truncated)"


def from_status(code: int, details: str, reason: str = "") -> errdefs.CtrdError:
    """The taxonomy's error for a status a client received (a deadline counts as unavailable)."""
    cls = _FROM_STATUS.get(code)
    if cls is None:
        cls = errdefs.Unavailable if code in (UNAVAILABLE, DEADLINE_EXCEEDED) else errdefs.Internal
    return cls(details, reason=reason)
