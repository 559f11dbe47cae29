"""The lifecycle state machine: one transition function, docker's refusal messages."""

from __future__ import annotations

import pytest

from ctrd.errdefs import FailedPrecondition
from daemon.containers.state import Action, Status, is_alive, transition

CID = "c" * 64


@pytest.mark.parametrize(
    ("status", "action", "target"),
    [
        (Status.CREATED, Action.START, Status.RUNNING),
        (Status.EXITED, Action.START, Status.RUNNING),
        (Status.RESTARTING, Action.START, Status.RUNNING),
        (Status.RUNNING, Action.PAUSE, Status.PAUSED),
        (Status.PAUSED, Action.RESUME, Status.RUNNING),
        (Status.RUNNING, Action.EXIT, Status.EXITED),
        (Status.PAUSED, Action.EXIT, Status.EXITED),
        (Status.CREATED, Action.EXIT, Status.EXITED),
        (Status.EXITED, Action.RESTART_WAIT, Status.RESTARTING),
        (Status.RESTARTING, Action.CANCEL_RESTART, Status.EXITED),
        (Status.CREATED, Action.REMOVE, Status.REMOVING),
        (Status.EXITED, Action.REMOVE, Status.REMOVING),
        (Status.REMOVING, Action.DIE, Status.DEAD),
        (Status.DEAD, Action.REMOVE, Status.REMOVING),
    ],
)
def test_allowed(status: Status, action: Action, target: Status) -> None:
    assert transition(CID, status, action) is target


@pytest.mark.parametrize(
    ("status", "action", "message"),
    [
        (Status.RUNNING, Action.START, f"container {CID} is already running"),
        (Status.PAUSED, Action.START, f"container {CID} is paused, unpause it instead"),
        (Status.RUNNING, Action.REMOVE,
         f"cannot remove running container {CID}: stop the container before removing or force remove"),
        (Status.PAUSED, Action.REMOVE,
         f"cannot remove paused container {CID}: stop the container before removing or force remove"),
        (Status.PAUSED, Action.PAUSE, f"container {CID} is already paused"),
        (Status.EXITED, Action.PAUSE, f"container {CID} is not running"),
        (Status.RUNNING, Action.RESUME, f"container {CID} is not paused"),
        (Status.REMOVING, Action.START, f"container {CID} is being removed"),
        (Status.RUNNING, Action.RESTART_WAIT, f"container {CID} cannot restart-wait while running"),
    ],
)
def test_refused_with_docker_messages(status: Status, action: Action, message: str) -> None:
    with pytest.raises(FailedPrecondition) as exc:
        transition(CID, status, action)
    assert exc.value.message == message


def test_every_pair_is_either_allowed_or_refused() -> None:
    for status in Status:
        for action in Action:
            try:
                assert isinstance(transition(CID, status, action), Status)
            except FailedPrecondition as exc:
                assert CID in exc.message


def test_alive() -> None:
    assert {s for s in Status if is_alive(s)} == {Status.RUNNING, Status.PAUSED}
