"""ctrctl's foreground attach against an in-memory client (no gRPC server): call order (Wait, Start,
then one Logs stream), exit code, --rm."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ctrctl import attach as attach_mod
from ctrctl.errors import CliError
from ctrd import errdefs
from ctrd.v1 import container_pb2


class _Stream:
    def __init__(self, entries: list[container_pb2.LogsResponse], hold: threading.Event | None = None) -> None:
        self.entries, self.hold = entries, hold

    def __iter__(self) -> Iterator[container_pb2.LogsResponse]:
        if self.hold is not None:  # end only after Wait has answered (and a while more)
            self.hold.wait(5)
            time.sleep(0.2)
        return iter(self.entries)

    def cancel(self) -> None:
        pass


class _Future:
    def __init__(self, done: threading.Event, code: int, answered: threading.Event) -> None:
        self.done, self.code, self.answered = done, code, answered

    def result(self, timeout: float) -> container_pb2.WaitResponse:
        if not self.done.wait(timeout):
            from ctrctl.client import FutureTimeoutError

            raise FutureTimeoutError()
        self.answered.set()
        return container_pb2.WaitResponse(exit_code=self.code)

    def cancel(self) -> None:
        pass


class FakeClient:
    """Logs before Start ends at once (as ctrd does for a created container); after Start the
    stream carries the whole log and ends (like ctrd's) only once Wait has answered, when
    `slow_stream`; Wait answers once Start has run."""

    def __init__(self, start_error: errdefs.CtrdError | None = None, slow_stream: bool = False) -> None:
        self.order: list[str] = []
        self.started = threading.Event()
        self.answered = threading.Event()
        self.slow_stream = slow_stream
        self.start_error = start_error
        self.log = [container_pb2.LogsResponse(stream="stdout", data=b"one\n"),
                    container_pb2.LogsResponse(stream="stderr", data=b"two\n")]
        outer = self

        class Containers:
            def Logs(self, req: container_pb2.LogsRequest) -> _Stream:
                outer.order.append("Logs")
                assert req.follow and req.stdout and req.stderr and req.tail == -1
                if outer.started.is_set():
                    return _Stream(list(outer.log), outer.answered if outer.slow_stream else None)
                return _Stream([])

            class Wait:
                @staticmethod
                def future(req: container_pb2.WaitRequest) -> _Future:
                    outer.order.append("Wait")
                    return _Future(outer.started, 3, outer.answered)

            def Start(self, req: Any) -> None:
                outer.order.append("Start")
                if outer.start_error is not None:
                    raise outer.start_error
                outer.started.set()

            def Remove(self, req: container_pb2.RemoveRequest) -> None:
                assert req.force
                outer.order.append("Remove")

            def Kill(self, req: Any) -> None:
                outer.order.append("Kill")

        self.containers = Containers()

    def call(self, method: Any, request: Any, **kw: Any) -> Any:
        return method(request)


def test_wait_before_start_and_one_log_stream_after_it(capfd: pytest.CaptureFixture[str]) -> None:
    c = FakeClient()
    code = attach_mod.attach(c, "abc", start=True, remove=True, fresh=True)  # type: ignore[arg-type]
    assert code == 3
    assert c.order == ["Wait", "Start", "Logs", "Remove"]
    out, err = capfd.readouterr()
    assert (out, err) == ("one\n", "two\n")


def test_exec_failure_keeps_docker_exit_code_and_removes() -> None:
    c = FakeClient(errdefs.InvalidArgument('exec: "x": not found', reason=errdefs.REASON_EXEC_NOT_FOUND))
    with pytest.raises(CliError) as info:
        attach_mod.attach(c, "abc", start=True, remove=True, fresh=True)  # type: ignore[arg-type]
    assert info.value.exit_code == 127
    assert c.order == ["Wait", "Start", "Remove"]


def test_output_ending_after_wait_answered_is_all_printed_before_remove(capfd: pytest.CaptureFixture[str]) -> None:
    c = FakeClient(slow_stream=True)
    assert attach_mod.attach(c, "abc", start=True, remove=True, fresh=True) == 3  # type: ignore[arg-type]
    assert capfd.readouterr() == ("one\n", "two\n")
    assert c.order[-1] == "Remove"
