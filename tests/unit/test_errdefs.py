from __future__ import annotations

import grpc
import pytest

from ctrd import errdefs, errgrpc

ALL = [
    (errdefs.NotFound, grpc.StatusCode.NOT_FOUND),
    (errdefs.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errdefs.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errdefs.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errdefs.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errdefs.Internal, grpc.StatusCode.INTERNAL),
]


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, str], ...]) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._trailing


@pytest.mark.parametrize(("cls", "code"), ALL)
def test_round_trip_through_grpc_status(cls: type[errdefs.CtrdError], code: grpc.StatusCode) -> None:
    status, details, meta = errgrpc.to_status(cls("container abc: boom", reason="exec-not-found"))
    assert status == code
    back = errgrpc.to_native(_FakeRpcError(status, details, meta))
    assert type(back) is cls
    assert back.message == "container abc: boom"
    assert back.reason == "exec-not-found"


@pytest.mark.parametrize(("cls", "_code"), ALL)
def test_round_trip_through_wire_code(cls: type[errdefs.CtrdError], _code: grpc.StatusCode) -> None:
    err = cls("x")
    back = errdefs.from_code(err.code, "x", "r")
    assert type(back) is cls and back.reason == "r"


def test_unknown_exception_is_internal() -> None:
    status, details, _ = errgrpc.to_status(ValueError("bad"))
    assert status == grpc.StatusCode.INTERNAL and "bad" in details


def test_unavailable_from_deadline() -> None:
    back = errgrpc.to_native(_FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "", ()))
    assert isinstance(back, errdefs.Unavailable)
