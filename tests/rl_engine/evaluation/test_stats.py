"""Bradley-Terry ratings and agreement statistics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rl_engine.evaluation import (
    agreement_rate,
    bradley_terry,
    cohen_kappa,
    fleiss_kappa,
    ratings_table,
)


def test_it_rates_two_players_by_their_win_share() -> None:
    # x wins 3 of 4: P(x beats y) = 0.75 -> difference 400 * log10(0.75 / 0.25) = 190.85,
    # centred on 1000: x = 1095.42, y = 904.58.
    battles = [("x", "y", "a")] * 3 + [("y", "x", "a")]
    ratings = bradley_terry(battles, prior=0)
    assert ratings["x"].rating - ratings["y"].rating == pytest.approx(400 * math.log10(3))
    assert ratings["x"].rating == pytest.approx(1000 + 200 * math.log10(3))
    assert (ratings["x"].battles, ratings["x"].wins, ratings["y"].wins) == (4, 3.0, 1.0)
    # The default weak prior moves this by well under one Elo point.
    default = bradley_terry(battles)
    assert default["x"].rating == pytest.approx(ratings["x"].rating, abs=1.0)


def test_it_counts_a_tie_as_half_a_win_each_way() -> None:
    # 2 wins + 2 ties = 3 wins of 4 for x: the same ratings as 3-1.
    battles = [("x", "y", "a"), ("y", "x", "b"), ("x", "y", "tie"), ("y", "x", "tie")]
    ratings = bradley_terry(battles, prior=0)
    assert ratings["x"].rating - ratings["y"].rating == pytest.approx(400 * math.log10(3))


def test_it_counts_both_bad_as_a_tie() -> None:
    ties = bradley_terry([("x", "y", "a"), ("x", "y", "tie")], prior=0)
    both_bad = bradley_terry([("x", "y", "a"), ("x", "y", "both_bad")], prior=0)
    assert both_bad["x"].rating == pytest.approx(ties["x"].rating)


def test_it_finds_the_maximum_likelihood_for_several_players() -> None:
    # At the MLE each player's expected wins equal its actual wins (the score equations).
    battles = (
        [("a", "b", "a")] * 7
        + [("a", "b", "b")] * 3
        + [("b", "c", "a")] * 6
        + [("b", "c", "tie")] * 2
        + [("c", "b", "a")] * 2
        + [("a", "c", "a")] * 4
        + [("c", "a", "a")] * 1
    )
    ratings = bradley_terry(battles, prior=0)
    theta = {name: (r.rating - 1000) * math.log(10) / 400 for name, r in ratings.items()}
    for player in "abc":
        expected = 0.0
        for first, second, _ in battles:
            if player in (first, second):
                other = second if player == first else first
                expected += 1 / (1 + math.exp(theta[other] - theta[player]))
        assert expected == pytest.approx(ratings[player].wins, abs=1e-6)
    assert np.mean([r.rating for r in ratings.values()]) == pytest.approx(1000.0)
    assert [r.system for r in ratings_table(ratings)] == ["a", "b", "c"]


def test_it_keeps_an_unbeaten_system_finite_with_the_prior() -> None:
    battles = [("champ", "x", "a")] * 5 + [("x", "y", "a")] * 3 + [("y", "x", "a")] * 2
    ratings = bradley_terry(battles)
    assert all(math.isfinite(r.rating) for r in ratings.values())
    assert ratings["champ"].rating > ratings["x"].rating + 400
    with pytest.raises(ValueError, match="every system must both win and lose"):
        bradley_terry(battles, prior=0)


def test_it_gives_seeded_bootstrap_intervals_that_shrink_with_more_battles() -> None:
    battles = [("x", "y", "a")] * 6 + [("x", "y", "b")] * 4 + [("y", "z", "a")] * 5
    battles += [("y", "z", "b")] * 5 + [("x", "z", "tie")] * 4
    small = bradley_terry(battles, bootstrap=200, seed=3)
    again = bradley_terry(battles, bootstrap=200, seed=3)
    large = bradley_terry(battles * 10, bootstrap=200, seed=3)
    for name in "xyz":
        assert small[name] == again[name]
        assert small[name].low <= small[name].rating <= small[name].high
        assert large[name].high - large[name].low < small[name].high - small[name].low
    no_bootstrap = bradley_terry(battles)
    assert no_bootstrap["x"].low == no_bootstrap["x"].rating == no_bootstrap["x"].high


def test_it_names_bad_battles() -> None:
    with pytest.raises(ValueError, match="battle 1: outcome must be 'a', 'b', 'tie' or 'both_bad'"):
        bradley_terry([("x", "y", "a"), ("x", "y", "A")])
    with pytest.raises(ValueError, match="battle 0: 'x' cannot play against itself"):
        bradley_terry([("x", "x", "a")])
    assert bradley_terry([]) == {}


def test_it_computes_cohens_kappa_for_the_textbook_case() -> None:
    # 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15.
    # p_o = 35/50 = 0.7; A says yes 25/50, B 30/50; p_e = 0.5*0.6 + 0.5*0.4 = 0.5;
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert agreement_rate(a, b) == pytest.approx(0.7)


def test_it_handles_kappa_extremes() -> None:
    # Always disagreeing on a balanced 2-label task: p_o = 0, p_e = 0.5 -> kappa = -1.
    assert cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)
    assert cohen_kappa(["A", "B", "tie"], ["A", "B", "tie"]) == 1.0
    assert math.isnan(cohen_kappa(["A", "A"], ["A", "A"]))  # chance agreement 1: undefined
    # None (skipped item) pairs are dropped: what is left is the textbook 3-of-3 agreement.
    assert cohen_kappa(["A", None, "B", "A"], ["A", "B", "B", None]) == 1.0
    with pytest.raises(ValueError, match="different numbers of items: 2 vs 1"):
        cohen_kappa(["A", "B"], ["A"])
    with pytest.raises(ValueError, match="no item was labelled by both raters"):
        agreement_rate([None], ["A"])


# Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_it_computes_fleiss_kappa_for_the_textbook_table() -> None:
    # Column totals 20, 28, 39, 21, 32 of 140: P_e = (400+784+1521+441+1024)/140^2 = 0.212755.
    # Sum over items of (sum n_ij^2 - 14) = 688; P = 688 / (10 * 14 * 13) = 0.378022.
    # kappa = (0.378022 - 0.212755) / (1 - 0.212755) = 0.209930.
    assert fleiss_kappa(FLEISS_TABLE, table=True) == pytest.approx(0.209930, abs=1e-6)


def test_it_accepts_label_lists_for_fleiss() -> None:
    categories = ["v", "w", "x", "y", "z"]
    per_item = [
        [label for label, count in zip(categories, row, strict=True) for _ in range(count)]
        for row in FLEISS_TABLE
    ]
    assert fleiss_kappa(per_item) == pytest.approx(0.209930, abs=1e-6)
    assert fleiss_kappa([["A", "A", "A"], ["B", "B", "B"]]) == 1.0
    # Items with fewer than two ratings carry no agreement information and are skipped.
    assert fleiss_kappa([["A", "A"], ["B", "B"], ["A", None]]) == 1.0
    # Two raters, Fleiss on the yes/no textbook table: p_o 0.7, shares 0.55/0.45,
    # P_e = 0.55^2 + 0.45^2 = 0.505, kappa = (0.7 - 0.505) / 0.495 = 0.393939.
    pairs = [["yes", "yes"]] * 20 + [["yes", "no"]] * 15 + [["no", "no"]] * 15
    assert fleiss_kappa(pairs) == pytest.approx(0.195 / 0.495)
    with pytest.raises(ValueError, match="no item has two or more ratings"):
        fleiss_kappa([["A"], ["B"]])


def test_it_asks_whether_integer_ratings_are_a_table_or_labels() -> None:
    with pytest.raises(ValueError, match="integer ratings are ambiguous"):
        fleiss_kappa(FLEISS_TABLE)
    # The same integers read as labels 1-5 from three raters: full agreement on both items.
    assert fleiss_kappa([[1, 1, 1], [5, 5, 5]], table=False) == 1.0
    with pytest.raises(ValueError, match="non-negative counts"):
        fleiss_kappa([[1, -1], [2, 0]], table=True)


def test_bootstrap_ratio_pools_ratios_of_sums_and_brackets_the_score() -> None:
    from rl_engine.evaluation.stats import bootstrap_ratio

    # WritingBench pooled criteria: items with (8 + 6) and (10) -> 24 / 3 = 8.
    assert bootstrap_ratio([([14.0, 10.0], [2.0, 1.0])], resamples=0) == (8.0, 8.0, 8.0)
    # S̄-like: two parts, S_l mean 50 and S_q mean 70 (the second item has no S_q).
    score, _low, _high = bootstrap_ratio([([40.0, 60.0], [1, 1]), ([70.0, 0.0], [1, 0])])
    assert score == pytest.approx(60.0)
    values = [100.0] * 30 + [0.0] * 10
    score, low, high = bootstrap_ratio([(values, [1] * 40)], resamples=2000, seed=3)
    assert score == 75.0 and 60.0 < low < 75.0 < high < 90.0
    assert bootstrap_ratio([(values, [1] * 40)], resamples=2000, seed=3) == (score, low, high)
    assert bootstrap_ratio([([0.0], [0.0])]) == (None, None, None)
    with pytest.raises(ValueError, match="one numerator and one denominator per item"):
        bootstrap_ratio([([1.0, 2.0], [1.0])])
