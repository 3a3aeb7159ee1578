"""Student-t intervals of a mean over seeds, checked against published t tables."""

from __future__ import annotations

import math

import pytest

from rl_engine.evaluation.intervals import student_t_cdf, student_t_quantile, t_interval


@pytest.mark.parametrize(
    ("df", "quantile"),
    [(1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (9, 2.2622), (29, 2.0452)],
)
def test_the_975_quantile_matches_the_t_table(df: int, quantile: float) -> None:
    assert student_t_quantile(0.975, df) == pytest.approx(quantile, abs=1e-4)
    assert student_t_cdf(quantile, df) == pytest.approx(0.975, abs=1e-5)


def test_large_df_tends_to_the_normal_quantile() -> None:
    assert student_t_quantile(0.975, 10_000) == pytest.approx(1.96, abs=1e-3)
    assert student_t_quantile(0.025, 5) == pytest.approx(-student_t_quantile(0.975, 5))


def test_the_interval_of_three_seeds() -> None:
    result = t_interval([0.2, 0.4, None, 0.6])
    assert result.n == 3 and result.mean == pytest.approx(0.4)
    half = 4.302653 * 0.2 / math.sqrt(3)
    assert (result.low, result.high) == (pytest.approx(0.4 - half), pytest.approx(0.4 + half))
    assert result.half_width == pytest.approx(half)


def test_below_two_values_there_is_no_interval() -> None:
    assert t_interval([]).mean is None
    one = t_interval([3.0])
    assert (one.n, one.mean, one.low, one.high) == (1, 3.0, None, None)
    assert t_interval([2.0, 2.0]).low == 2.0  # no spread, no width
    with pytest.raises(ValueError, match="confidence"):
        t_interval([1.0, 2.0], confidence=1.5)
