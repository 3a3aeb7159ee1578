"""Margin-aware selection on hand-computed cases."""

from __future__ import annotations

import pytest

from rl_engine.selection import (
    SelectionItem,
    SelectionResult,
    chosen_ids,
    learning_potential,
    order_references,
    potential_histogram,
    select_samples,
)

# Scores 1-10 from a pointwise judge. Potentials by hand (best other writer minus the policy):
#   s1: max(8, 6) - 3 = 5      s2: max(9, 4) - 7 = 2      s3: max(5, 5) - 6 = -1
#   s4: max(7) - 2 = 5 (ties s1 on potential)               s5: 10 - 9 = 1
# Policy scores (difficulty, lowest first): s4 2, s1 3, s3 6, s2 7, s5 9.
ITEMS = [
    SelectionItem("s2", {"policy": 7, "gpt": 9, "qwen": 4}),
    SelectionItem("s1", {"policy": 3, "gpt": 8, "qwen": 6}),
    SelectionItem("s3", {"policy": 6, "gpt": 5, "qwen": 5}),
    SelectionItem("s5", {"policy": 9, "gpt": 10, "qwen": None}),
    SelectionItem("s4", {"policy": 2, "gpt": 7}),
]


def test_it_computes_the_learning_potential_by_hand() -> None:
    assert learning_potential({"policy": 3, "gpt": 8, "qwen": 6}, "policy") == 5.0
    assert learning_potential({"policy": 6, "gpt": 5, "qwen": 5}, "policy") == -1.0
    # A failed judgment (None) is absent, not zero.
    assert learning_potential({"me": 9, "gpt": 10, "qwen": None}, "me") == 1.0


def test_it_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="no score for the policy 'me'"):
        learning_potential({"gpt": 8}, "me")
    with pytest.raises(ValueError, match="no score for the policy 'me'"):
        learning_potential({"me": None, "gpt": 8}, "me")
    with pytest.raises(ValueError, match="no score for any writer other than the policy 'me'"):
        learning_potential({"me": 3, "gpt": None}, "me")
    with pytest.raises(ValueError, match="NaN"):
        learning_potential({"me": 3, "gpt": float("nan")}, "me")


def test_it_selects_by_margin_with_ties_by_sample_id() -> None:
    results = select_samples(ITEMS, 3, "margin")
    assert [r.sample_id for r in results] == ["s1", "s4", "s2", "s5", "s3"]
    assert chosen_ids(results) == ["s1", "s4", "s2"]
    assert results[0] == SelectionResult("s1", 5.0, 3.0, chosen=True, rank=0)
    assert results[-1] == SelectionResult("s3", -1.0, 6.0, chosen=False, rank=4)


def test_it_selects_by_difficulty_lowest_policy_score_first() -> None:
    assert chosen_ids(select_samples(ITEMS, 2, "difficulty")) == ["s4", "s1"]
    ranked = [r.sample_id for r in select_samples(ITEMS, 2, "difficulty")]
    assert ranked == ["s4", "s1", "s3", "s2", "s5"]


def test_it_keeps_everything_with_full_and_clamps_k() -> None:
    assert chosen_ids(select_samples(ITEMS, 1, "full")) == ["s1", "s2", "s3", "s4", "s5"]
    assert len(chosen_ids(select_samples(ITEMS, 99, "margin"))) == 5
    assert chosen_ids(select_samples(ITEMS, None, "margin")) == ["s1", "s4", "s2", "s5", "s3"]
    assert chosen_ids(select_samples(ITEMS, 0, "margin")) == []


def test_it_draws_random_selections_from_the_seed_not_the_input_order() -> None:
    many = [SelectionItem(f"s{i:03d}", {"policy": i % 7, "ref": 5}) for i in range(100)]
    first = chosen_ids(select_samples(many, 10, "random", seed=3))
    again = chosen_ids(select_samples(list(reversed(many)), 10, "random", seed=3))
    other = chosen_ids(select_samples(many, 10, "random", seed=4))
    assert first == again
    assert first != other
    assert len(set(first)) == 10


def test_it_accepts_mappings_and_reports_bad_items() -> None:
    rows = [
        {"sample_id": "a", "scores": {"me": 1, "ref": 4}, "policy": "me"},
        {"sample_id": "b", "scores": {"me": 3, "ref": 4}, "policy": "me"},
    ]
    assert chosen_ids(select_samples(rows, 1)) == ["a"]
    with pytest.raises(ValueError, match="item 1 has no scores"):
        select_samples([rows[0], {"sample_id": "c"}], 1)
    with pytest.raises(ValueError, match="sample id 'a' appears twice"):
        select_samples([rows[0], rows[0]], 1)
    with pytest.raises(ValueError, match="strategy must be one of margin"):
        select_samples(rows, 1, "hardest")
    with pytest.raises(ValueError, match="k must be >= 0"):
        select_samples(rows, -1)


def test_it_requires_scores_only_where_the_strategy_needs_them() -> None:
    unscored = [SelectionItem("a", {"policy": 3, "ref": 5}), SelectionItem("b", {"ref": 5})]
    with pytest.raises(ValueError, match="sample 'b': no score for the policy 'policy'"):
        select_samples(unscored, 1, "margin")
    with pytest.raises(ValueError, match="sample 'b': no score for the policy"):
        select_samples(unscored, 1, "difficulty")
    results = select_samples(unscored, 1, "full")
    assert [(r.sample_id, r.potential, r.policy_score) for r in results] == [
        ("a", 2.0, 3.0),
        ("b", None, None),
    ]


def test_it_bins_potentials_for_a_histogram() -> None:
    # Potentials 5, 5, 2, 1, -1 over [-1, 5] in 3 bins of width 2: [-1,1) [1,3) [3,5].
    bins = potential_histogram(select_samples(ITEMS, 3, "margin"), bins=3)
    assert [(b.low, b.high, b.chosen, b.not_chosen) for b in bins] == [
        (-1.0, 1.0, 0, 1),
        (1.0, 3.0, 1, 1),
        (3.0, 5.0, 2, 0),
    ]
    assert sorted(bins[2].sample_ids) == ["s1", "s4"]
    assert potential_histogram([], bins=3) == []


def test_it_orders_references_ascending_with_ties_by_name() -> None:
    scores = {"policy": 6.0, "qwen": 8.0, "gpt": 8.0, "llama": 4.0, "mistral": 6.0}
    assert order_references(scores) == ["llama", "mistral", "policy", "gpt", "qwen"]
    assert order_references(scores, policy="policy") == ["llama", "mistral", "gpt", "qwen"]
    # llama (4 < 6) is beaten; mistral ties the policy, so it stays.
    assert order_references(scores, "policy", drop_beaten=True) == ["mistral", "gpt", "qwen"]
    assert order_references({"policy": 9, "a": 1}, "policy", drop_beaten=True) == []


def test_it_refuses_to_order_unscored_references() -> None:
    with pytest.raises(ValueError, match=r"no score for the references \['gpt'\]"):
        order_references({"policy": 3, "gpt": None, "qwen": 5}, "policy")
    with pytest.raises(ValueError, match="drop_beaten needs the policy's name"):
        order_references({"gpt": 3}, drop_beaten=True)
    with pytest.raises(ValueError, match="drop_beaten needs a score for the policy 'me'"):
        order_references({"gpt": 3}, "me", drop_beaten=True)
