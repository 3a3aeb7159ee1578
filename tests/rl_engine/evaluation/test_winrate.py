"""Win rates from both-order verdicts, and the length-controlled win rate."""

from __future__ import annotations

from enum import Enum

import numpy as np
import pytest

from rl_engine.evaluation import (
    combine_orders,
    length_controlled_win_rate,
    pairwise_win_rate,
    position_bias,
    win_rate_from_outcomes,
)


class FakeVerdict(str, Enum):  # noqa: UP042 - shaped like rl_engine.judging.Verdict
    A = "A"
    B = "B"
    TIE = "TIE"
    INVALID = "INVALID"


@pytest.mark.parametrize(
    ("first", "second", "outcome"),
    [
        ("A", "B", "win"),  # system first wins; system second wins
        ("B", "A", "loss"),
        ("TIE", "TIE", "tie"),
        ("A", "A", "tie"),  # the first-shown response always wins: position bias, a tie
        ("B", "B", "tie"),
        ("A", "TIE", "tie"),  # disagreeing orders are a tie
        ("INVALID", "B", "invalid"),
        ("C", "C", "tie"),  # the judge's raw tie letter
        (FakeVerdict.A, FakeVerdict.B, "win"),
    ],
)
def test_it_combines_both_orders(first, second, outcome) -> None:
    assert combine_orders(first, second) == outcome


def test_it_computes_the_adjusted_win_rate_by_hand() -> None:
    first = ["A", "A", "A", "B", "TIE", "A", "INVALID", "A"]
    second = ["B", "B", "A", "A", "TIE", "TIE", "B", "B"]
    # win, win, tie (flip), loss, tie, tie (flip), invalid, win -> 3 W, 3 T, 1 L, 1 invalid
    rate = pairwise_win_rate(first, second)
    assert (rate.wins, rate.ties, rate.losses, rate.invalid, rate.inconsistent) == (3, 3, 1, 1, 2)
    assert rate.total == 7
    assert rate.win_rate == pytest.approx(3 / 7)
    assert rate.adjusted_win_rate == pytest.approx((3 + 1.5) / 7)


def test_it_reports_bad_verdicts_and_empty_comparisons() -> None:
    with pytest.raises(ValueError, match="item 1: system-second verdict must be A, B, TIE"):
        pairwise_win_rate(["A", "A"], ["B", "maybe"])
    with pytest.raises(ValueError, match="verdicts for 2 items in one order but 1"):
        pairwise_win_rate(["A", "A"], ["B"])
    empty = win_rate_from_outcomes(["invalid"])
    assert empty.total == 0 and empty.adjusted_win_rate is None


def test_it_leaves_the_rate_alone_without_length_differences() -> None:
    # Equal lengths: the length feature is zero, so LC = sigmoid(b0) = the mean preference 0.75.
    result = length_controlled_win_rate(["win", "win", "win", "loss"], [100] * 4, [100] * 4)
    assert result.win_rate == 0.75
    assert result.length_controlled == pytest.approx(0.75, abs=1e-9)
    assert result.length_coefficient == 0.0


def test_it_discounts_wins_that_come_from_length() -> None:
    rng = np.random.default_rng(0)
    outcomes, system, baseline = [], [], []
    for _ in range(400):
        diff = rng.normal(300, 400)  # the system writes longer on average
        p_win = 1 / (1 + np.exp(-(0.0 + 2.0 * np.tanh(diff / 400))))  # judge likes length only
        outcomes.append("win" if rng.random() < p_win else "loss")
        system.append(500 + diff)
        baseline.append(500.0)
    result = length_controlled_win_rate(outcomes, system, baseline)
    assert result.win_rate > 0.6
    assert result.length_coefficient > 1.0
    assert abs(result.length_controlled - 0.5) < 0.08  # no preference once length is equal
    # The fit satisfies the score equations: residuals sum to 0 (intercept unpenalised).
    y = np.array([1.0 if o == "win" else 0.0 for o in outcomes])
    d = np.array(system) - np.array(baseline)
    f = np.tanh(d / d.std())
    p = 1 / (1 + np.exp(-(result.intercept + result.length_coefficient * f)))
    assert np.sum(y - p) == pytest.approx(0.0, abs=1e-6)
    assert np.sum((y - p) * f) == pytest.approx(1e-3 * result.length_coefficient, abs=1e-6)


def test_it_drops_invalid_items_and_checks_lengths() -> None:
    result = length_controlled_win_rate(["win", "invalid", "tie"], [1, 2, 3], [1, 2, 3])
    assert result.items == 2 and result.win_rate == 0.75
    with pytest.raises(ValueError, match="need one length pair per outcome: 2 outcomes, 1 system"):
        length_controlled_win_rate(["win", "loss"], [1], [1, 2])
    with pytest.raises(ValueError, match="no valid outcome"):
        length_controlled_win_rate(["invalid"], [1], [1])


def test_it_measures_the_judges_position_bias() -> None:
    original = ["A", "A", "B", "TIE", "A", "B", "INVALID", FakeVerdict.A]
    swapped = ["B", "A", "A", "TIE", "A", "B", "A", FakeVerdict.TIE]
    # consistent, flip (first both times), consistent, consistent, flip (first), flip (second),
    # invalid, flip (A then TIE: neither side both times) -> 7 items, 4 flips
    bias = position_bias(original, swapped)
    assert (bias.items, bias.flips, bias.first_favoured, bias.second_favoured) == (7, 4, 2, 1)
    assert bias.invalid == 1 and bias.flip_rate == pytest.approx(4 / 7)
    with pytest.raises(ValueError, match="item 0: swapped verdict must be A, B, TIE"):
        position_bias(["A"], ["X"])
