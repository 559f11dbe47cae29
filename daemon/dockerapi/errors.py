"""One mapping of ctrd.errdefs to docker's status codes; the body is docker's {"message": ...}."""

from __future__ import annotations

from ctrd import errdefs

STATUS: tuple[tuple[type[errdefs.CtrdError], int], ...] = (
    (errdefs.NotFound, 404),
    (errdefs.AlreadyExists, 409),
    (errdefs.InvalidArgument, 400),
    (errdefs.FailedPrecondition, 409),
    (errdefs.Unavailable, 503),
    (errdefs.Internal, 500),
)


class HTTPError(Exception):
    """An answer of the API layer itself (no such route, a version out of range, not implemented)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def status_of(exc: BaseException) -> int:
    if isinstance(exc, HTTPError):
        return exc.status
    for cls, code in STATUS:
        if isinstance(exc, cls):
            return code
    return 500
