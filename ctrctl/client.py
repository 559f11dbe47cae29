"""The connection to ctrd: a sync gRPC channel over the unix socket (ctrctl.h2grpc, not grpcio), and
error translation.

Imported only by verbs that talk to the daemon (it pulls in h2 and the generated messages).
Each service's methods are made on first use from the service descriptor (`_Stub`) rather than by
the generated `*_pb2_grpc` stubs, which build every method up front: importing one of those
modules costs ~4 ms of every command, and `run` uses five methods of fifteen.
"""

from __future__ import annotations

import _socket  # as ctrctl/h2grpc.py: the plain socket object is all a probe needs
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from ctrctl.errors import CliError, Unreachable, exit_code_for
from ctrctl.h2grpc import Channel, FutureTimeoutError, RpcError, StatusCode
from ctrd import errdefs, errstatus

__all__ = ["Client", "FutureTimeoutError", "RpcError", "StatusCode", "daemon_error", "native_error", "reachable"]

T = TypeVar("T")

_MAX_MESSAGE = 64 << 20


def socket_path(address: str) -> str:
    return address.removeprefix("unix://")


def reachable(path: str) -> bool:
    """Whether something accepts connections on the socket (tells "daemon down" from a daemon error)."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.settimeout(2.0)
        s.connect(path)
        return True
    except PermissionError:
        raise CliError(f"Error: permission denied while trying to connect to ctrd at {path} (are you root?)")
    except OSError:
        return False
    finally:
        s.close()


class _Stub:
    """A service's methods as multi-callables, each made when first used (same paths,
    serializers and call shapes as grpc's generated stub)."""

    def __init__(self, channel: Channel, module: Any, service: str) -> None:
        self._channel = channel
        self._service = module.DESCRIPTOR.services_by_name[service]

    def __getattr__(self, name: str) -> Any:
        from google.protobuf.message_factory import GetMessageClass

        method = self._service.methods_by_name.get(name)
        if method is None:
            raise AttributeError(f"{self._service.full_name} has no method {name}")
        ch = self._channel
        if method.client_streaming:
            make: Any = ch.stream_stream if method.server_streaming else ch.stream_unary
        else:
            make = ch.unary_stream if method.server_streaming else ch.unary_unary
        call = make(
            f"/{self._service.full_name}/{name}",
            request_serializer=GetMessageClass(method.input_type).SerializeToString,
            response_deserializer=GetMessageClass(method.output_type).FromString,
        )
        setattr(self, name, call)  # later lookups skip __getattr__
        return call


class Client:
    def __init__(self, address: str) -> None:
        self.address = socket_path(address)
        self._channel: Channel | None = None
        # The generated .pyi types the stubs for grpc.aio only; these are sync stubs, hence Any.
        self._stubs: dict[str, Any] = {}

    @property
    def channel(self) -> Channel:
        if self._channel is None:
            # The connection is made by the first call; a daemon that is not there fails that
            # call with UNAVAILABLE, which `native` turns into the unreachable-daemon line.
            self._channel = Channel(self.address, max_message=_MAX_MESSAGE)
        return self._channel

    def _stub(self, service: str, messages: Callable[[], ModuleType]) -> Any:
        stub = self._stubs.get(service)
        if stub is None:
            channel = self.channel  # first: the connection comes up while the messages import
            stub = self._stubs[service] = _Stub(channel, messages(), service)
        return stub

    # The generated messages are imported by the verb that uses them, not by every ctrctl call.
    @property
    def containers(self) -> Any:
        def messages() -> ModuleType:
            from ctrd.v1 import container_pb2
            return container_pb2
        return self._stub("ContainerService", messages)

    @property
    def images(self) -> Any:
        def messages() -> ModuleType:
            from ctrd.v1 import image_pb2
            return image_pb2
        return self._stub("ImageService", messages)

    @property
    def networks(self) -> Any:
        def messages() -> ModuleType:
            from ctrd.v1 import network_pb2
            return network_pb2
        return self._stub("NetworkService", messages)

    @property
    def volumes(self) -> Any:
        def messages() -> ModuleType:
            from ctrd.v1 import volume_pb2
            return volume_pb2
        return self._stub("VolumeService", messages)

    @property
    def system(self) -> Any:
        def messages() -> ModuleType:
            from ctrd.v1 import system_pb2
            return system_pb2
        return self._stub("SystemService", messages)

    @property
    def files(self) -> Any:
        def messages() -> ModuleType:
            from ctrd.v1 import files_pb2
            return files_pb2
        return self._stub("FilesService", messages)

    @property
    def cleanup(self) -> Any:
        def messages() -> ModuleType:
            from ctrd.v1 import cleanup_pb2
            return cleanup_pb2
        return self._stub("CleanupService", messages)

    def native(self, err: RpcError) -> errdefs.CtrdError:
        """Map an RpcError to the taxonomy; a dead socket becomes Unreachable (exit 1)."""
        native = native_error(err)
        if isinstance(native, errdefs.Unavailable) and not reachable(self.address):
            raise Unreachable(self.address)
        return native

    def call(self, method: Callable[..., T], request: Any, **kwargs: Any) -> T:
        """A unary call; raises CtrdError (or Unreachable) instead of RpcError."""
        try:
            return method(request, **kwargs)
        except RpcError as err:
            raise self.native(err)

    def result(self, future: Any) -> Any:
        """The answer of a unary call sent with `.future()`; CtrdError (or Unreachable) on failure."""
        try:
            return future.result()
        except RpcError as err:
            raise self.native(err)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def native_error(err: RpcError) -> errdefs.CtrdError:
    """The taxonomy's error for a call's status and its `ctrd-reason` trailer."""
    reason = ""
    for key, value in err.trailing_metadata():
        if key == errstatus.REASON_KEY:
            reason = value if isinstance(value, str) else value.decode()
    return errstatus.from_status(err.code().value, err.details() or err.code().name, reason)


def daemon_error(exc: errdefs.CtrdError, default_exit: int, *, container: str = "", image: str = "") -> CliError:
    """One stderr line for a daemon error, with docker's wording for missing objects."""
    if isinstance(exc, errdefs.NotFound) and container:
        line = f"Error: No such container: {container}"
    elif isinstance(exc, errdefs.NotFound) and image:
        line = f"Error: No such image: {image}"
    else:
        line = f"Error: {exc.message}"
    return CliError(line, exit_code_for(exc.reason, default_exit))
