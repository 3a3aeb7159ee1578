"""The rules every CurriculumStore keeps, as checks any store's tests can run.

Usage, for a store backed by anything::

    from tests.rl_engine.curriculum_contract import CONTRACT_CHECKS

    @pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=lambda c: c.__name__)
    def test_it_keeps_the_store_contract(check):
        check(make_store)

``make_store(num_tiers)`` must return a fresh, empty store that knows exactly the samples in
``num_tiers`` (sample id -> number of references). The concurrency check calls the store from
several threads; a database-backed store must give each thread its own connection (for Django,
run it in a ``transaction=True`` test and close connections at the end of each thread, which
``thread_cleanup`` is called for).
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from rl_engine.curriculum import (
    CurriculumStore,
    StepOutcome,
    TierState,
    Transition,
    apply_outcome,
)

StoreFactory = Callable[[Mapping[str, int]], CurriculumStore]


def _outcome(sample_id: str, step: int, advance: bool, wins: int | None = None) -> StepOutcome:
    won = (1 if advance else 0) if wins is None else wins
    return StepOutcome(sample_id, step, wins=won, ties=0, losses=1, invalid=0, advance=advance)


def check_initial_state(make_store: StoreFactory) -> None:
    """A fresh store has every sample at tier 0, not mastered, never recorded."""
    store = make_store({"s1": 3, "s2": 1})
    states = store.read_tiers(["s1", "s2"])
    assert states == {"s1": TierState(0, 3, False, -1), "s2": TierState(0, 1, False, -1)}
    assert store.read_tiers([]) == {}
    with pytest.raises(LookupError):
        store.read_tiers(["s1", "nobody"])


def check_advances_one_tier_per_step_and_masters_at_top(make_store: StoreFactory) -> None:
    """advance moves up exactly one tier; at the top it marks mastered once and stays."""
    store = make_store({"s": 3})
    moves: list[Transition] = []
    for step in range(5):
        moves += store.record_outcomes([_outcome("s", step, advance=True)])
    assert moves == [
        Transition("s", 0, 0, 1),
        Transition("s", 1, 1, 2),
        Transition("s", 2, 2, 2, mastered=True),
    ]
    assert store.read_tiers(["s"])["s"] == TierState(2, 3, True, 4)


def check_a_losing_step_is_recorded_without_moving(make_store: StoreFactory) -> None:
    store = make_store({"s": 3})
    assert store.record_outcomes([_outcome("s", 0, advance=False)]) == []
    assert store.read_tiers(["s"])["s"] == TierState(0, 3, False, 0)


def check_replayed_or_older_steps_change_nothing(make_store: StoreFactory) -> None:
    """An outcome whose step is <= the sample's last step is a no-op, even if it would advance."""
    store = make_store({"s": 4, "t": 4})
    store.record_outcomes([_outcome("s", 3, advance=True), _outcome("t", 0, advance=False)])
    before = store.snapshot()
    assert store.record_outcomes([_outcome("s", 3, advance=True)]) == []
    assert store.record_outcomes([_outcome("s", 1, advance=True)]) == []
    assert store.snapshot() == before
    # The same sample twice in one call at one step: only the first counts.
    moves = store.record_outcomes([_outcome("t", 1, advance=True), _outcome("t", 1, advance=True)])
    assert moves == [Transition("t", 1, 0, 1)]
    assert store.read_tiers(["t"])["t"].tier == 1


def check_single_tier_sample_masters_immediately(make_store: StoreFactory) -> None:
    store = make_store({"only": 1})
    assert store.record_outcomes([_outcome("only", 0, advance=True)]) == [
        Transition("only", 0, 0, 0, mastered=True)
    ]
    assert store.record_outcomes([_outcome("only", 1, advance=True)]) == []
    assert store.read_tiers(["only"])["only"] == TierState(0, 1, True, 1)


def check_unknown_sample_records_nothing(make_store: StoreFactory) -> None:
    """A batch naming an unknown sample fails as a whole; the known samples are unchanged."""
    store = make_store({"s": 2})
    with pytest.raises((LookupError, ValueError)):
        store.record_outcomes([_outcome("s", 0, advance=True), _outcome("ghost", 0, True)])
    assert store.read_tiers(["s"])["s"] == TierState(0, 2, False, -1)


def check_snapshot_restore_round_trip(make_store: StoreFactory) -> None:
    """restore(snapshot()) brings back exactly the saved states; later steps can be replayed."""
    store = make_store({"a": 3, "b": 2, "c": 1})
    store.record_outcomes([_outcome("a", 0, True), _outcome("b", 0, True), _outcome("c", 0, False)])
    saved = store.snapshot()
    store.record_outcomes([_outcome("a", 1, True), _outcome("b", 1, True), _outcome("c", 1, True)])
    assert store.snapshot() != saved
    store.restore(saved)
    assert store.snapshot() == saved
    # After a rollback the steps after the checkpoint run again and count again.
    moves = store.record_outcomes([_outcome("a", 1, True)])
    assert moves == [Transition("a", 1, 1, 2)]


def check_matches_the_reference_rule(make_store: StoreFactory, seed: int = 7) -> None:
    """A random sequence of outcomes (replays included) ends where apply_outcome says."""
    rng = random.Random(seed)
    num_tiers = {f"s{i}": rng.randint(1, 4) for i in range(6)}
    store = make_store(num_tiers)
    model = {sample_id: TierState.initial(count) for sample_id, count in num_tiers.items()}
    for _ in range(40):
        step = rng.randint(0, 12)
        batch = [
            _outcome(sample_id, step, advance=rng.random() < 0.6)
            for sample_id in rng.sample(sorted(num_tiers), rng.randint(1, len(num_tiers)))
        ]
        expected: list[Transition] = []
        for outcome in batch:
            model[outcome.sample_id], move = apply_outcome(model[outcome.sample_id], outcome)
            if move is not None:
                expected.append(move)
        assert store.record_outcomes(batch) == expected
        assert store.read_tiers(sorted(num_tiers)) == model


def check_concurrent_recorders_lose_nothing_and_never_double_advance(
    make_store: StoreFactory,
    threads: int = 6,
    steps: int = 8,
    thread_cleanup: Callable[[], Any] | None = None,
) -> None:
    """Several recorders replaying the same steps at once: every step applies exactly once.

    Each thread records steps 0..steps-1 in order for every sample, all advancing. Whatever the
    interleaving, each (sample, step) move appears exactly once across all threads, and each
    sample ends at min(steps, top) (mastered when steps exceed the tiers).
    """
    num_tiers = {f"s{i}": 1 + i % 5 for i in range(10)}
    store = make_store(num_tiers)
    barrier = threading.Barrier(threads)
    results: list[list[Transition]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def recorder(index: int) -> None:
        try:
            order = sorted(num_tiers)
            random.Random(index).shuffle(order)
            barrier.wait()
            for step in range(steps):
                batch = [_outcome(sample_id, step, advance=True) for sample_id in order]
                results[index] += store.record_outcomes(batch)
        except BaseException as error:  # surfaced in the main thread below
            errors.append(error)
        finally:
            if thread_cleanup is not None:
                thread_cleanup()

    workers = [threading.Thread(target=recorder, args=(i,)) for i in range(threads)]
    # Switch threads as often as possible so that an unguarded read-modify-write gets caught.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors
    moves = [move for result in results for move in result]
    assert len(moves) == len({(m.sample_id, m.step) for m in moves}), "a step advanced twice"
    final = store.read_tiers(sorted(num_tiers))
    for sample_id, count in num_tiers.items():
        top = count - 1
        expected_moves = min(steps, count)  # top moves, plus one "mastered" event
        mine = sorted((m for m in moves if m.sample_id == sample_id), key=lambda m: m.step)
        assert [m.step for m in mine] == list(range(expected_moves)), sample_id
        assert final[sample_id] == TierState(
            tier=min(steps, top), num_tiers=count, mastered=steps > top, last_step=steps - 1
        )


CONTRACT_CHECKS: list[Callable[[StoreFactory], None]] = [
    check_initial_state,
    check_advances_one_tier_per_step_and_masters_at_top,
    check_a_losing_step_is_recorded_without_moving,
    check_replayed_or_older_steps_change_nothing,
    check_single_tier_sample_masters_immediately,
    check_unknown_sample_records_nothing,
    check_snapshot_restore_round_trip,
    check_matches_the_reference_rule,
    check_concurrent_recorders_lose_nothing_and_never_double_advance,
]


def run_store_contract(make_store: StoreFactory) -> None:
    """Run every contract check against stores made by ``make_store``."""
    for check in CONTRACT_CHECKS:
        check(make_store)
