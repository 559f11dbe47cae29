"""The network helper makes the next sandbox's namespace only while idle (daemon.network.helper):
not while requests are waiting, once per quiet spell, and a failed attempt is not retried until
the next request. A fake NetOps: no namespaces here."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from daemon.network import helper, wire


class FakeOps:
    def __init__(self, succeed: bool) -> None:
        self.succeed = succeed
        self.has_spare = False
        self.made = 0
        self.served: list[bool] = []  # per sandbox_create: whether a spare was there
        self.tried = threading.Event()

    def make_spare(self) -> None:
        self.made += 1
        self.has_spare = self.succeed
        self.tried.set()

    def sandbox_create(self, path: str) -> None:
        self.served.append(self.has_spare)
        self.has_spare = False

    def close(self) -> None:
        pass


def _run(ops: FakeOps, monkeypatch: pytest.MonkeyPatch, fds: list[int]) -> tuple[int, int, threading.Thread]:
    monkeypatch.setattr(helper, "NetOps", lambda: ops)
    monkeypatch.setattr(helper, "SPARE_IDLE", 0.01)
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    fds += [req_r, rep_r, rep_w]  # req_w: the test closes it to end serve()
    t = threading.Thread(target=helper.serve, args=(req_r, rep_w), daemon=True)
    return req_w, rep_r, t


@pytest.fixture
def fds() -> Iterator[list[int]]:
    opened: list[int] = []
    yield opened
    for fd in opened:
        os.close(fd)


def _reply(fd: int) -> dict[str, Any]:
    head = os.read(fd, wire.HEADER.size)
    (size,) = wire.HEADER.unpack(head)
    return wire.decode_body(os.read(fd, size))


def _ask(req_w: int, rep_r: int) -> dict[str, Any]:
    os.write(req_w, wire.encode({"op": "sandbox_create", "args": {"path": "/x"}}))
    return _reply(rep_r)


def test_the_spare_is_made_when_idle_and_used_by_the_next_sandbox(
        monkeypatch: pytest.MonkeyPatch, fds: list[int]) -> None:
    ops = FakeOps(succeed=True)
    req_w, rep_r, t = _run(ops, monkeypatch, fds)
    os.write(req_w, wire.encode({"op": "sandbox_create", "args": {"path": "/a"}}))  # waiting at the start
    t.start()
    assert _reply(rep_r)["ok"]  # readiness
    assert _reply(rep_r)["ok"] and ops.served == [False]  # served before any spare was made
    assert ops.tried.wait(10) and ops.has_spare
    ops.tried.clear()
    assert _ask(req_w, rep_r)["ok"] and ops.served == [False, True]
    assert ops.tried.wait(10) and ops.made == 2  # the next one, after the next quiet spell
    os.close(req_w)
    t.join(10)
    assert not t.is_alive()


def test_a_failed_attempt_waits_for_the_next_request(monkeypatch: pytest.MonkeyPatch, fds: list[int]) -> None:
    ops = FakeOps(succeed=False)
    req_w, rep_r, t = _run(ops, monkeypatch, fds)
    t.start()
    assert _reply(rep_r)["ok"]
    assert ops.tried.wait(10)
    ops.tried.clear()
    # many quiet spells (SPARE_IDLE is 10 ms here) and no request: no second attempt
    assert not ops.tried.wait(0.2) and ops.made == 1
    assert _ask(req_w, rep_r)["ok"]
    assert ops.tried.wait(10) and ops.made == 2
    os.close(req_w)
    t.join(10)
