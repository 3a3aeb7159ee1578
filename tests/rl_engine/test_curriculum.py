"""Curriculum invariants: the store contract on InMemoryStore, and the scheduler's rules."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rl_engine.curriculum import (
    CurriculumStore,
    InMemoryStore,
    ReferenceScheduler,
    StepOutcome,
    TierState,
    Transition,
    dump_snapshot,
    load_snapshot,
)
from tests.rl_engine.curriculum_contract import CONTRACT_CHECKS

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

rewards_st = st.lists(st.sampled_from([1.0, 0.5, 0.0, None]), min_size=0, max_size=6)
tiers_st = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(1, 4), min_size=1, max_size=5
)


@st.composite
def run_st(draw: st.DrawFn) -> tuple[dict[str, int], list[tuple[int, dict[str, list]]]]:
    """Tier counts and a sequence of (step, rewards per sample); steps may repeat or go back."""
    num_tiers = draw(tiers_st)
    samples = sorted(num_tiers)
    steps = draw(
        st.lists(
            st.tuples(
                st.integers(0, 10),
                st.dictionaries(st.sampled_from(samples), rewards_st, max_size=len(samples)),
            ),
            max_size=15,
        )
    )
    return num_tiers, steps


def make_store(num_tiers: Mapping[str, int]) -> CurriculumStore:
    return InMemoryStore(num_tiers)


@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=lambda check: check.__name__)
def test_it_keeps_the_store_contract(check) -> None:
    check(make_store)


@FAST
@given(run=run_st(), min_wins=st.integers(1, 3))
def test_it_moves_dynamic_samples_at_most_one_tier_per_step_and_never_down(run, min_wins) -> None:
    num_tiers, steps = run
    store = InMemoryStore(num_tiers)
    scheduler = ReferenceScheduler(store, "dynamic", min_wins=min_wins)
    for step, rewards in steps:
        before = store.snapshot()
        moves = scheduler.record_step(step, rewards)
        after = store.snapshot()
        assert len({m.sample_id for m in moves}) == len(moves), "two moves for one sample"
        for sample_id, state in after.items():
            old = before[sample_id]
            assert old.tier <= state.tier <= old.tier + 1
            assert state.tier <= state.num_tiers - 1
            assert not state.mastered or state.tier == state.num_tiers - 1
            assert old.mastered <= state.mastered
            if step <= old.last_step or sample_id not in rewards:
                assert state == old, "a replayed or absent step changed the state"
            else:
                wins = sum(1 for r in rewards[sample_id] if r == 1.0)
                advanced = state.tier > old.tier or state.mastered > old.mastered
                assert advanced == (wins >= min_wins and not old.mastered)
                assert state.last_step == step


@FAST
@given(run=run_st())
def test_it_makes_rerecording_a_step_a_no_op(run) -> None:
    num_tiers, steps = run
    store = InMemoryStore(num_tiers)
    scheduler = ReferenceScheduler(store)
    for step, rewards in steps:
        scheduler.record_step(step, rewards)
        before = store.snapshot()
        everyone_wins = {sample_id: [1.0, 1.0] for sample_id in rewards}
        assert scheduler.record_step(step, everyone_wins) == []
        assert store.snapshot() == before


@FAST
@given(run=run_st(), strategy=st.sampled_from(["static", "random"]), seed=st.integers(0, 99))
def test_it_never_advances_static_or_random_but_still_counts(run, strategy, seed) -> None:
    num_tiers, steps = run
    store = InMemoryStore(num_tiers)
    scheduler = ReferenceScheduler(store, strategy, seed=seed)
    recorded = 0
    for step, rewards in steps:
        last = {s: state.last_step for s, state in store.snapshot().items()}
        assert scheduler.record_step(step, rewards) == []
        recorded += sum(1 for sample_id in rewards if step > last[sample_id])
        for sample_id, tier in scheduler.current_tiers(sorted(num_tiers), step).items():
            assert 0 <= tier < num_tiers[sample_id]
            if strategy == "static":
                assert tier == num_tiers[sample_id] - 1
    assert all(state.tier == 0 and not state.mastered for state in store.snapshot().values())
    assert len(store.history) == recorded


@FAST
@given(run=run_st(), cut=st.integers(0, 15))
def test_it_round_trips_snapshots(run, cut) -> None:
    num_tiers, steps = run
    store = InMemoryStore(num_tiers)
    scheduler = ReferenceScheduler(store)
    for step, rewards in steps[:cut]:
        scheduler.record_step(step, rewards)
    saved = store.snapshot()
    history = store.history
    for step, rewards in steps[cut:]:
        scheduler.record_step(step, rewards)
    store.restore(saved)
    assert store.snapshot() == saved
    assert store.history == history
    fresh = InMemoryStore(num_tiers)
    fresh.restore(saved)
    assert fresh.snapshot() == saved


def test_it_counts_wins_ties_losses_and_invalid_in_one_store_call() -> None:
    calls: list[list[StepOutcome]] = []

    class RecordingStore(InMemoryStore):
        def record_outcomes(self, outcomes):
            calls.append(list(outcomes))
            return super().record_outcomes(outcomes)

    store = RecordingStore({"a": 3, "b": 3})
    scheduler = ReferenceScheduler(store, min_wins=2)
    moves = scheduler.record_step(4, {"a": [1.0, 0.5, None, 0.0, 1.0], "b": [1.0, 0.0]})
    assert calls == [
        [
            StepOutcome("a", 4, wins=2, ties=1, losses=1, invalid=1, advance=True),
            StepOutcome("b", 4, wins=1, ties=0, losses=1, invalid=0, advance=False),
        ]
    ]
    assert moves == [Transition("a", 4, 0, 1)]
    assert scheduler.current_tiers(["a", "b"]) == {"a": 1, "b": 0}


def test_it_rejects_rewards_that_are_not_pairwise() -> None:
    store = InMemoryStore({"a": 2})
    scheduler = ReferenceScheduler(store)
    with pytest.raises(ValueError, match=r"reward 0\.8 of rollout 1 for sample 'a' at step 0"):
        scheduler.record_step(0, {"a": [1.0, 0.8]})
    with pytest.raises(ValueError, match="not a pairwise reward"):
        scheduler.record_step(0, {"a": [float("nan")]})
    assert store.snapshot()["a"] == TierState(0, 2, False, -1)


def test_it_validates_its_settings() -> None:
    store = InMemoryStore({"a": 2})
    with pytest.raises(ValueError, match="strategy must be one of dynamic, static, random"):
        ReferenceScheduler(store, "easy-to-hard")
    with pytest.raises(ValueError, match="min_wins must be at least 1"):
        ReferenceScheduler(store, min_wins=0)
    with pytest.raises(ValueError, match="static_tier is only used with strategy 'static'"):
        ReferenceScheduler(store, "dynamic", static_tier=1)
    with pytest.raises(ValueError, match="needs at least one reference"):
        InMemoryStore({"a": 0})
    with pytest.raises(ValueError, match="mastered at the top tier"):
        TierState(0, 2, mastered=True)


def test_it_uses_the_static_tier_clamped_per_sample() -> None:
    store = InMemoryStore({"short": 2, "long": 5})
    tiers = ReferenceScheduler(store, "static", static_tier=3).current_tiers(["short", "long"])
    assert tiers == {"short": 1, "long": 3}
    weakest = ReferenceScheduler(store, "static", static_tier=-2).current_tiers(["short", "long"])
    assert weakest == {"short": 0, "long": 3}


def test_it_draws_random_tiers_reproducibly_from_seed_sample_and_step() -> None:
    ids = [f"s{i}" for i in range(200)]
    store = InMemoryStore(dict.fromkeys(ids, 4))
    first = ReferenceScheduler(store, "random", seed=1)
    again = ReferenceScheduler(InMemoryStore(dict.fromkeys(ids, 4)), "random", seed=1)
    other = ReferenceScheduler(store, "random", seed=2)
    assert first.current_tiers(ids, step=3) == again.current_tiers(ids, step=3)
    assert first.current_tiers(ids, step=3) != first.current_tiers(ids, step=4)
    assert first.current_tiers(ids, step=3) != other.current_tiers(ids, step=3)
    counts = [0] * 4
    for tier in first.current_tiers(ids, step=3).values():
        counts[tier] += 1
    assert min(counts) > 25, counts  # roughly uniform over 4 tiers (expected 50 each)


def test_it_lets_concurrent_schedulers_share_one_store() -> None:
    ids = [f"s{i}" for i in range(20)]
    store = InMemoryStore(dict.fromkeys(ids, 3))
    moves: list[Transition] = []
    lock = threading.Lock()

    def trainer() -> None:
        scheduler = ReferenceScheduler(store)
        for step in range(5):
            result = scheduler.record_step(step, {s: [1.0, 0.0] for s in ids})
            with lock:
                moves.extend(result)

    threads = [threading.Thread(target=trainer) for _ in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave as much as possible
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert len(moves) == 20 * 3  # two tier moves and one mastery per sample, never repeated
    assert all(state == TierState(2, 3, True, 4) for state in store.snapshot().values())


def test_it_dumps_and_loads_snapshots_as_json() -> None:
    store = InMemoryStore({"a": 3, "b": 1})
    ReferenceScheduler(store).record_step(0, {"a": [1.0], "b": [1.0]})
    data = json.loads(json.dumps(dump_snapshot(store.snapshot())))
    assert data == {
        "a": {"tier": 1, "num_tiers": 3, "mastered": False, "last_step": 0},
        "b": {"tier": 0, "num_tiers": 1, "mastered": True, "last_step": 0},
    }
    assert load_snapshot(data) == store.snapshot()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"tier": "1", "num_tiers": 3, "mastered": False, "last_step": 0},
            "field 'tier' must be int",
        ),
        ({"tier": 1, "num_tiers": 3, "mastered": 0, "last_step": 0}, "'mastered' must be bool"),
        ({"tier": 1, "num_tiers": 3, "mastered": False}, "'last_step' must be int, got None"),
        ({"tier": 3, "num_tiers": 3, "mastered": False, "last_step": 0}, "tier 3 is outside 0..2"),
    ],
)
def test_it_names_the_sample_and_field_of_a_bad_snapshot(entry, message) -> None:
    with pytest.raises(ValueError, match=rf"ckpt/tiers.json: sample 'a'.*{message}"):
        load_snapshot({"a": entry}, source="ckpt/tiers.json")
