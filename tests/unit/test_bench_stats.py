"""bench.stats: percentile math matches numpy's 'linear' definition; summaries and ratios."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.stats import percentile, ratio, summarize


def test_percentile_interpolates_between_closest_ranks() -> None:
    data = [1.0, 2.0, 3.0, 4.0]
    assert percentile(data, 0) == 1.0
    assert percentile(data, 100) == 4.0
    assert percentile(data, 50) == pytest.approx(2.5)
    assert percentile(data, 90) == pytest.approx(3.7)  # numpy.percentile([1,2,3,4], 90) == 3.7


def test_percentile_ignores_input_order_and_single_value() -> None:
    assert percentile([9.0, 1.0, 5.0], 50) == 5.0
    assert percentile([7.5], 90) == 7.5


def test_percentile_refuses_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=60),
       st.floats(min_value=0, max_value=100))
def test_percentile_lies_within_the_sample_and_is_monotonic(data: list[float], q: float) -> None:
    p = percentile(data, q)
    assert min(data) <= p <= max(data)
    assert percentile(data, min(100.0, q + 5)) >= p


def test_summarize_reports_p50_p90_mean_min_max() -> None:
    s = summarize([float(x) for x in range(1, 11)])
    assert (s.n, s.min, s.max) == (10, 1.0, 10.0)
    assert s.p50 == pytest.approx(5.5)
    assert s.p90 == pytest.approx(9.1)
    assert s.mean == pytest.approx(5.5)
    assert s.as_dict()["p90"] == s.p90


def test_ratio_is_none_for_a_zero_peer() -> None:
    assert ratio(10.0, 20.0) == 0.5
    assert ratio(1.0, 0.0) is None
