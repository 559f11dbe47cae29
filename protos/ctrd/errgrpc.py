"""The only place where the error taxonomy meets gRPC status codes, in both directions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import grpc

from ctrd import errdefs

REASON_KEY = "ctrd-reason"
# grpc-message travels percent-encoded in the trailers, and a client drops a response whose
# trailers exceed 8 KiB ("Stream removed"): a message echoing a huge id must be cut short
MAX_DETAILS = 1024

_TO_STATUS: dict[type[errdefs.CtrdError], grpc.StatusCode] = {
    errdefs.NotFound: grpc.StatusCode.NOT_FOUND,
    errdefs.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errdefs.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errdefs.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errdefs.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errdefs.Internal: grpc.StatusCode.INTERNAL,
}
_FROM_STATUS: dict[grpc.StatusCode, type[errdefs.CtrdError]] = {v: k for k, v in _TO_STATUS.items()}


def _cap(message: str) -> str:
    raw = message.encode()
    if len(raw) <= MAX_DETAILS:
        return message
    return raw[:MAX_DETAILS].decode(errors="ignore") + "... (truncated)"


def to_status(exc: BaseException) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]]:
    """Map an exception to (status code, details, trailing metadata)."""
    if isinstance(exc, errdefs.CtrdError):
        meta = ((REASON_KEY, exc.reason),) if exc.reason else ()
        return _TO_STATUS.get(type(exc), grpc.StatusCode.INTERNAL), _cap(exc.message), meta
    return grpc.StatusCode.INTERNAL, _cap(f"internal error: {exc}"), ()


def to_native(err: grpc.RpcError) -> errdefs.CtrdError:
    """Map a client-side RpcError (sync or aio) back to the taxonomy."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else None) or str(code)
    reason = ""
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    # grpc-stubs types the aio metadata as opaque "_Metadatum" items; at run time they are pairs.
    for key, value in cast("Iterable[tuple[str, str | bytes]]", trailing or ()):
        if key == REASON_KEY:
            reason = value if isinstance(value, str) else value.decode()
    cls = _FROM_STATUS.get(code)
    if cls is None:
        cls = errdefs.Unavailable if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) else errdefs.Internal
    return cls(details, reason=reason)


async def abort_with(context: grpc.aio.ServicerContext, exc: BaseException) -> None:  # type: ignore[type-arg]
    """Abort an aio RPC with the status that matches `exc` (used by the server interceptor)."""
    code, details, meta = to_status(exc)
    if meta:
        context.set_trailing_metadata(meta)
    await context.abort(code, details)
