"""One mapping of ctrd.errdefs to docker's status codes; the body is docker's {"message": ...}."""

from __future__ import annotations

from typing import TypeVar

from ctrd import errdefs

T = TypeVar("T")

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


def available(service: T | None, what: str) -> T:
    """A backend service this daemon was started with, or 501 naming what is missing."""
    if service is None:
        raise HTTPError(501, f"{what} are not available")
    return service


def status_of(exc: BaseException) -> int:
    if isinstance(exc, HTTPError):
        return exc.status
    for cls, code in STATUS:
        if isinstance(exc, cls):
            return code
    return 500
