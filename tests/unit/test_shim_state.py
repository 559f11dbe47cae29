"""The shim's lifecycle table."""

from __future__ import annotations

import pytest

from ctrd import errdefs
from shimd.state import Status, check, transition


def test_happy_path() -> None:
    s = Status.NONE
    for verb, want in [("create", Status.CREATED), ("start", Status.RUNNING), ("pause", Status.PAUSED),
                       ("resume", Status.RUNNING), ("exit", Status.STOPPED), ("delete", Status.DELETED)]:
        s = transition(s, verb, "c1")
        assert s is want


@pytest.mark.parametrize(("status", "verb", "err"), [
    (Status.NONE, "start", errdefs.NotFound),
    (Status.RUNNING, "delete", errdefs.FailedPrecondition),
    (Status.RUNNING, "start", errdefs.FailedPrecondition),
    (Status.STOPPED, "kill", errdefs.FailedPrecondition),
    (Status.PAUSED, "exec", errdefs.FailedPrecondition),
    (Status.DELETED, "delete", errdefs.NotFound),
])
def test_refused(status: Status, verb: str, err: type[Exception]) -> None:
    with pytest.raises(err, match="c1"):
        check(status, verb, "c1")


def test_created_container_can_be_deleted_and_stopped() -> None:
    assert transition(Status.CREATED, "delete", "c") is Status.DELETED
    check(Status.CREATED, "stop", "c")
