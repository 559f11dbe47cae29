"""A runtime helper's answers to its shim (shimd.backends.forked): marshal data behind a length,
read from a non-blocking pipe on the shim's loop, whole answers only, one at a time."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from ctrd import errdefs
from shimd.backends.forked import _Answers, frame
from shimd.loop import ShimLoop
from tests.shimloop import run


def _read_all(loop: ShimLoop, chunks: list[bytes], n: int) -> list[Any]:
    """Write `chunks` one loop turn apart (a reader sees partial answers), read `n` answers."""
    r, w = os.pipe()
    answers = _Answers(r)

    async def feed() -> None:
        for chunk in chunks:
            os.write(w, chunk)
            await asyncio.sleep(0)
        os.close(w)

    async def go() -> list[Any]:
        feeder = asyncio.ensure_future(feed())
        try:
            return [await answers.next("create c1") for _ in range(n)]
        finally:
            await feeder

    try:
        return run(loop, go)
    finally:
        answers.close()


def test_answers_split_across_reads_come_whole_and_in_order(loop: ShimLoop) -> None:
    data = frame({"ok": [4242, "/sys/fs/cgroup/pids/ctrd/c1"]}) + frame({"ok": "started"})
    chunks = [data[i:i + 3] for i in range(0, len(data), 3)]
    assert _read_all(loop, chunks, 2) == [[4242, "/sys/fs/cgroup/pids/ctrd/c1"], "started"]


def test_two_answers_in_one_read_are_both_kept(loop: ShimLoop) -> None:
    assert _read_all(loop, [frame({"ok": 1}) + frame({"ok": {"pids_current": 3}})], 2) == [1, {"pids_current": 3}]


def test_an_error_answer_raises_its_code_with_the_verb(loop: ShimLoop) -> None:
    err = frame({"err": {"code": "not_found", "message": "container c1 does not exist", "reason": ""}})
    with pytest.raises(errdefs.NotFound, match="create c1: container c1 does not exist"):
        _read_all(loop, [err], 1)


@pytest.mark.parametrize("cut", [0, 2, 6])
def test_a_helper_gone_mid_answer_is_an_internal_error(loop: ShimLoop, cut: int) -> None:
    with pytest.raises(errdefs.Internal, match="create c1: the runtime helper died without an answer"):
        _read_all(loop, [frame({"ok": "started"})[:cut]] if cut else [], 1)


def test_what_marshal_cannot_carry_is_refused_before_it_is_sent() -> None:
    with pytest.raises(ValueError):
        frame({"ok": object()})
