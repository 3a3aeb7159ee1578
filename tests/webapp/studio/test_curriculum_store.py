"""DjangoCurriculumStore keeps the engine's store contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping, Sequence

import pytest
from django.db import connection, connections

from rl_engine.curriculum import StepOutcome, TierState, Transition
from tests import services
from tests.rl_engine.curriculum_contract import (
    CONTRACT_CHECKS,
    check_concurrent_recorders_lose_nothing_and_never_double_advance,
)
from tests.webapp.studio.factories import make_curriculum, make_run
from tests.webapp.studio.recorder_process import record_steps
from webapp.studio.models import CurriculumState, CurriculumTransition
from webapp.studio.services.curriculum_store import DjangoCurriculumStore


class LabelledStore:
    """The real store behind the contract's labels ("s1") instead of instruction pks.

    Only names are translated; every read and write goes to DjangoCurriculumStore.
    """

    def __init__(self, num_tiers: Mapping[str, int]) -> None:
        run = make_run()
        self.run = run
        self.ids = make_curriculum(run, dict(num_tiers))
        self.labels = {sample_id: label for label, sample_id in self.ids.items()}
        self.store = DjangoCurriculumStore(run)

    def _id(self, label: str) -> str:
        return self.ids.get(label, "999999999")

    def _label(self, transition: Transition) -> Transition:
        return Transition(
            self.labels[transition.sample_id],
            transition.step,
            transition.from_tier,
            transition.to_tier,
            transition.mastered,
        )

    def read_tiers(self, sample_ids: Sequence[str]) -> dict[str, TierState]:
        states = self.store.read_tiers([self._id(label) for label in sample_ids])
        return {self.labels[sample_id]: state for sample_id, state in states.items()}

    def record_outcomes(self, outcomes: Sequence[StepOutcome]) -> list[Transition]:
        renamed = [
            StepOutcome(
                self._id(o.sample_id), o.step, o.wins, o.ties, o.losses, o.invalid, o.advance
            )
            for o in outcomes
        ]
        return [self._label(t) for t in self.store.record_outcomes(renamed)]

    def snapshot(self) -> dict[str, TierState]:
        return {self.labels[k]: v for k, v in self.store.snapshot().items()}

    def restore(self, snapshot: Mapping[str, TierState]) -> None:
        self.store.restore({self._id(label): state for label, state in snapshot.items()})


SERIAL_CHECKS = [
    check
    for check in CONTRACT_CHECKS
    if check is not check_concurrent_recorders_lose_nothing_and_never_double_advance
]


@pytest.mark.django_db
@pytest.mark.parametrize("check", SERIAL_CHECKS, ids=lambda check: check.__name__)
def test_it_keeps_the_store_contract(check) -> None:
    check(LabelledStore)


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_contract_with_concurrent_threads() -> None:
    check_concurrent_recorders_lose_nothing_and_never_double_advance(
        LabelledStore, threads=4, steps=6, thread_cleanup=connections.close_all
    )


@pytest.mark.django_db
def test_it_writes_training_transitions_and_counts() -> None:
    run = make_run()
    ids = make_curriculum(run, {"a": 2})
    store = DjangoCurriculumStore(run)
    store.record_outcomes(
        [StepOutcome(ids["a"], 0, wins=1, ties=2, losses=1, invalid=0, advance=True)]
    )
    store.record_outcomes(
        [StepOutcome(ids["a"], 1, wins=0, ties=0, losses=3, invalid=1, advance=False)]
    )
    row = CurriculumState.objects.get(run=run)
    assert (row.tier, row.attempts, row.wins, row.ties, row.losses, row.invalid) == (
        1,
        2,
        1,
        2,
        4,
        1,
    )
    assert row.last_move_step == 0
    moves = list(
        CurriculumTransition.objects.filter(run=run).values_list(
            "step", "from_tier", "to_tier", "cause"
        )
    )
    assert moves == [(0, 0, 1, "training")]


@pytest.mark.django_db
def test_it_records_a_resume_rollback_as_transitions() -> None:
    run = make_run()
    ids = make_curriculum(run, {"a": 3, "b": 3})
    store = DjangoCurriculumStore(run)
    saved = store.snapshot()
    store.record_outcomes([StepOutcome(ids["a"], 0, 1, 0, 0, 0, True)])
    store.restore(saved)
    resume = CurriculumTransition.objects.get(run=run, cause="resume")
    assert (resume.instruction_id, resume.from_tier, resume.to_tier, resume.step) == (
        int(ids["a"]),
        1,
        0,
        0,
    )
    assert store.snapshot() == saved


@pytest.mark.django_db
def test_it_takes_one_query_to_read_many_tiers(django_assert_num_queries) -> None:
    run = make_run()
    ids = make_curriculum(run, {f"s{i}": 2 for i in range(30)})
    store = DjangoCurriculumStore(run)
    with django_assert_num_queries(1):
        states = store.read_tiers(list(ids.values()))
    assert len(states) == 30


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_it_loses_nothing_with_8_processes_on_postgres() -> None:
    services.require_postgres()
    run = make_run()
    tiers = {f"s{i}": 1 + i % 4 for i in range(40)}
    ids = make_curriculum(run, tiers)
    steps = 6
    context = multiprocessing.get_context("spawn")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    with context.Pool(8) as pool:
        results = pool.starmap(
            record_steps,
            [
                (connection.settings_dict["NAME"], run.pk, list(ids.values()), steps, seed)
                for seed in range(8)
            ],
        )
    moves = [move for result in results for move in result]
    assert len(moves) == len({(m[0], m[1]) for m in moves}), "a step advanced twice"
    for label, count in tiers.items():
        sid = ids[label]
        mine = sorted(m[1] for m in moves if m[0] == sid)
        assert mine == list(range(min(steps, count)))
        row = CurriculumState.objects.get(run=run, instruction_id=int(sid))
        assert (row.tier, row.mastered, row.last_step, row.attempts) == (
            min(steps, count - 1),
            steps > count - 1,
            steps - 1,
            steps,
        )
    assert CurriculumTransition.objects.filter(run=run).count() == len(moves)
