"""Rows timed in rounds: each round runs every row once, in an order shuffled anew each round
(seeded: the same for every run), so that load that comes and goes on a shared machine falls on all
rows alike, and a ratio of two rows compares runs made side by side, not sections minutes apart.

Why not one row after another: host speed drifts between sections (`runc run` read 53.7 ms in the
latency section and 43.3 ms in the interleaved engines section of one run, 2026-12-07). Why not one
fixed order (or a fixed order and its reverse): what a run leaves behind (a netns destroyed by a
kernel worker after the engine answered, a daemon's asynchronous cleanup) is paid by the row that
runs next, so a fixed order charges each row for its own neighbours; shuffled, every row follows
every other about equally often."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Row = tuple[str, Callable[[], None]]


@dataclass(slots=True)
class Timed:
    """Per row: the samples (ms) after the warm-up rounds, and the errors of failed runs."""

    samples: dict[str, list[float]]
    failures: dict[str, list[str]]

    def enough(self, key: str, runs: int) -> bool:
        """At least half the rounds gave a sample: the row is reported (with its failure count)."""
        return len(self.samples[key]) >= (runs + 1) // 2


def run_rounds(rows: Sequence[Row], warmup: int, runs: int, describe: Callable[[Exception], str],
               after_warmup: Callable[[], None] | None = None) -> Timed:
    """Time `rows` over warmup + runs rounds. A row whose failures pass half the runs is left out of
    the later rounds (one broken peer must not stop the others); `after_warmup` runs once, before
    the first timed round (e.g. to forget the steps the warm-up recorded)."""
    timed = Timed({k: [] for k, _ in rows}, {k: [] for k, _ in rows})
    for i in range(warmup + runs):
        if i == warmup and after_warmup is not None:
            after_warmup()
        order = list(rows)
        random.Random(i).shuffle(order)
        for key, run in order:
            if len(timed.failures[key]) > runs // 2:
                continue
            t = time.perf_counter()
            try:
                run()
            except Exception as exc:  # one broken row must not stop the others
                timed.failures[key].append(describe(exc))
                continue
            if i >= warmup:
                timed.samples[key].append((time.perf_counter() - t) * 1000.0)
    return timed
