"""One server interceptor: domain errors (ctrd.errdefs) become gRPC statuses here and nowhere else."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from ctrd import errgrpc
from ctrd.errdefs import CtrdError, InvalidArgument

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # the stubs are generic, the runtime classes are not
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor


def _log(method: str, exc: BaseException) -> None:
    if isinstance(exc, CtrdError):
        log.info("%s: %s: %s", method, exc.code, exc.message)
    else:
        log.exception("%s: unexpected error", method, exc_info=exc)


class _Malformed:
    """Stands in for a request whose bytes do not parse (grpc alone would answer UNKNOWN)."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


def _lenient(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:  # any decode failure is the client's: InvalidArgument below
            return _Malformed(str(exc))

    return parse


def _check(method: str, request: Any) -> None:
    if isinstance(request, _Malformed):
        raise InvalidArgument(f"request: malformed {method} request: {request.error}")


@contextlib.asynccontextmanager
async def _mapped(method: str, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
    """The one place a handler's exception becomes a gRPC status (abort raises AbortError)."""
    try:
        yield
    except grpc.aio.AbortError:
        raise
    except Exception as exc:
        _log(method, exc)
        await errgrpc.abort_with(context, exc)


class ErrorInterceptor(_Interceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary is not None:
            inner_uu: Any = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                async with _mapped(method, context):
                    _check(method, request)
                    return await inner_uu(request, context)
                raise AssertionError("unreachable: _mapped re-raises or aborts")

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, _lenient(handler.request_deserializer), handler.response_serializer
            )
        if handler.unary_stream is not None:
            inner_us: Any = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                async with _mapped(method, context):
                    _check(method, request)
                    async for item in inner_us(request, context):
                        yield item

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, _lenient(handler.request_deserializer), handler.response_serializer
            )
        if handler.stream_unary is not None:
            inner_su: Any = handler.stream_unary

            async def stream_unary(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                async with _mapped(method, context):
                    return await inner_su(requests, context)
                raise AssertionError("unreachable: _mapped re-raises or aborts")

            return grpc.stream_unary_rpc_method_handler(
                stream_unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_stream is not None:
            inner_ss: Any = handler.stream_stream

            async def stream_stream(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                async with _mapped(method, context):
                    async for item in inner_ss(requests, context):
                        yield item

            return grpc.stream_stream_rpc_method_handler(
                stream_stream, handler.request_deserializer, handler.response_serializer
            )
        return handler
