"""bench.rounds: rows timed in rounds, the order reversed every other round, warm-up not sampled,
a broken row dropped without stopping the others."""

from __future__ import annotations

from collections.abc import Callable

from bench.rounds import run_rounds


def test_each_round_runs_every_row_once_in_a_shuffled_order_and_warmup_is_not_sampled() -> None:
    calls: list[str] = []
    marks: list[int] = []

    def row(key: str) -> Callable[[], None]:
        return lambda: calls.append(key)

    keys = [str(k) for k in range(6)]
    timed = run_rounds([(k, row(k)) for k in keys], warmup=1, runs=30, describe=str,
                       after_warmup=lambda: marks.append(len(calls)))
    rounds = [calls[i:i + 6] for i in range(0, len(calls), 6)]
    assert len(rounds) == 31 and all(sorted(r) == keys for r in rounds)
    assert marks == [6]  # once, after the warm-up round, before the first timed one
    assert {k: len(v) for k, v in timed.samples.items()} == {k: 30 for k in keys}
    assert all(x >= 0 for v in timed.samples.values() for x in v)
    assert timed.enough("0", 30)
    # every row runs right after every other one at some point (what a row leaves behind is not
    # always charged to the same neighbour), and the order is the same in every run (seeded)
    follows = {(r[j], r[j + 1]) for r in rounds for j in range(5)}
    assert follows == {(a, b) for a in keys for b in keys if a != b}
    again: list[str] = []
    run_rounds([(k, lambda k=k: again.append(k)) for k in keys], warmup=1, runs=30, describe=str)  # type: ignore[misc]
    assert again == calls


def test_a_row_that_keeps_failing_is_dropped_and_the_others_go_on() -> None:
    tries = {"ok": 0, "bad": 0}

    def ok() -> None:
        tries["ok"] += 1

    def bad() -> None:
        tries["bad"] += 1
        raise RuntimeError("peer is broken")

    timed = run_rounds([("ok", ok), ("bad", bad)], warmup=0, runs=6, describe=str)
    assert tries == {"ok": 6, "bad": 4}  # dropped once its failures pass half the runs
    assert timed.failures["bad"] == ["peer is broken"] * 4
    assert not timed.enough("bad", 6) and timed.enough("ok", 6)


def test_a_row_that_fails_now_and_then_keeps_its_samples() -> None:
    n = [0]

    def flaky() -> None:
        n[0] += 1
        if n[0] % 3 == 0:
            raise OSError("once in three")

    timed = run_rounds([("flaky", flaky)], warmup=0, runs=6, describe=str)
    assert len(timed.samples["flaky"]) == 4 and len(timed.failures["flaky"]) == 2
    assert timed.enough("flaky", 6)
