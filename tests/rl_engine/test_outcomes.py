"""The one outcome vocabulary: letters and positions to outcomes, both orders, rewards, counts."""

from __future__ import annotations

import doctest
import itertools

import pytest

import rl_engine.outcomes
from rl_engine.judging import Verdict
from rl_engine.outcomes import Outcome, OutcomeCounts, combine_orders, verdict_letter
from rl_engine.reward import combine_orders as combine_rewards
from rl_engine.reward import pairwise_reward


def test_the_doctests_hold() -> None:
    result = doctest.testmod(rl_engine.outcomes)
    assert result.attempted >= 12 and result.failed == 0


@pytest.mark.parametrize(
    ("verdict", "position", "outcome"),
    [
        (Verdict.A, "first", Outcome.WIN),
        (Verdict.A, "second", Outcome.LOSS),
        (Verdict.B, "first", Outcome.LOSS),
        (Verdict.B, "second", Outcome.WIN),
        (Verdict.TIE, "first", Outcome.TIE),
        (Verdict.TIE, "second", Outcome.TIE),
        (Verdict.INVALID, "first", Outcome.INVALID),
        (Verdict.INVALID, "second", Outcome.INVALID),
    ],
)
def test_a_letter_and_a_position_give_one_outcome_and_back(
    verdict: Verdict, position: str, outcome: Outcome
) -> None:
    assert Outcome.from_verdict(verdict, position) is outcome
    assert Outcome.from_verdict(verdict.value, position) is outcome  # the stored letter
    assert outcome.verdict(position) is verdict
    assert pairwise_reward(verdict, position) == outcome.reward  # type: ignore[arg-type]


def test_rewards_and_outcomes_map_one_to_one() -> None:
    assert [o.reward for o in Outcome] == [1.0, 0.5, 0.0, None]
    for outcome in Outcome:
        assert Outcome.from_reward(outcome.reward) is outcome
        assert outcome == outcome.value  # stored in a text column as it is
    for bad in (0.8, float("nan"), 2.0):
        with pytest.raises(ValueError, match="not a pairwise reward"):
            Outcome.from_reward(bad)


def test_reading_letters_names_what_is_wrong() -> None:
    assert verdict_letter(" c ") is Verdict.TIE
    with pytest.raises(ValueError, match="judgments\\[2\\] must be A, B, TIE or INVALID"):
        verdict_letter("maybe", "judgments[2]")
    with pytest.raises(ValueError, match="policy_position"):
        Outcome.from_verdict("A", "left")


@pytest.mark.parametrize(("one", "other"), list(itertools.product(Outcome, Outcome)))
def test_both_orders_agree_make_a_tie_or_are_invalid(one: Outcome, other: Outcome) -> None:
    combined = combine_orders(one, other)
    if Outcome.INVALID in (one, other):
        assert combined is Outcome.INVALID
        single = combine_orders(one, other, partial="single")
        assert single is (other if one is Outcome.INVALID else one)
    else:
        assert combined is (one if one is other else Outcome.TIE)
    # The reward form of the same rule gives the same answer.
    assert combine_rewards(one.reward, other.reward) == combined.reward


def test_counts_give_rates_of_valid_outcomes_and_unknown_without_any() -> None:
    counts = OutcomeCounts.of(["win", Outcome.TIE, "loss", "win", "invalid"])
    assert (counts.wins, counts.ties, counts.losses, counts.invalid) == (2, 1, 1, 1)
    assert counts.rate("win") == 0.5 and counts.share("win") == 0.4
    assert counts.adjusted_win_rate == pytest.approx(2.5 / 4)
    assert counts.invalid_rate == 0.2
    nothing = OutcomeCounts.of(["invalid", "invalid"])
    assert nothing.rate("win") is None and nothing.share("win") is None
    assert nothing.invalid_rate == 1.0 and nothing.adjusted_win_rate is None
    assert (counts + nothing).invalid == 3
    with pytest.raises(ValueError, match="item 1: outcome must be win, tie, loss or invalid"):
        OutcomeCounts.of(["win", "draw"])
