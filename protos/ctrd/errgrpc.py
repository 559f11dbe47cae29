"""The error taxonomy on grpc.StatusCode, both directions (the table itself: ctrd.errstatus)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import grpc

from ctrd import errdefs, errstatus

REASON_KEY = errstatus.REASON_KEY
MAX_DETAILS = errstatus.MAX_DETAILS

_CODES: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}


def to_status(exc: BaseException) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]]:
    """Map an exception to (status code, details, trailing metadata)."""
    if isinstance(exc, errdefs.CtrdError):
        meta = ((REASON_KEY, exc.reason),) if exc.reason else ()
        return _CODES[errstatus.TO_STATUS.get(type(exc), errstatus.INTERNAL)], errstatus.cap(exc.message), meta
    return grpc.StatusCode.INTERNAL, errstatus.cap(f"internal error: {exc}"), ()


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
    return errstatus.from_status(code.value[0], details, reason)


async def abort_with(context: grpc.aio.ServicerContext, exc: BaseException) -> None:  # type: ignore[type-arg]
    """Abort an aio RPC with the status that matches `exc` (used by the server interceptor)."""
    code, details, meta = to_status(exc)
    if meta:
        context.set_trailing_metadata(meta)
    await context.abort(code, details)
