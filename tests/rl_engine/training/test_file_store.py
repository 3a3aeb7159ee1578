"""JsonFileStore: the curriculum contract, across processes, and across a reopen."""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Mapping
from pathlib import Path

import pytest

from rl_engine.curriculum import StepOutcome, TierState
from rl_engine.training.file_store import JsonFileStore
from tests.rl_engine.curriculum_contract import CONTRACT_CHECKS

_counter = itertools.count()


@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=lambda c: c.__name__)
def test_it_keeps_the_store_contract(check, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def make_store(num_tiers: Mapping[str, int]) -> JsonFileStore:
        return JsonFileStore(tmp_path / f"store-{next(_counter)}.json", num_tiers)

    check(make_store)


def _advance_from_a_process(path: str, step: int) -> None:
    store = JsonFileStore(path)
    store.record_outcomes([StepOutcome("s", step, 1, 0, 0, 0, advance=True)])


def test_it_is_shared_by_processes_and_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "curriculum.json"
    JsonFileStore(path, {"s": 10, "t": 2})
    context = multiprocessing.get_context("spawn")
    # Four processes race on the same step: it must count once.
    workers = [
        context.Process(target=_advance_from_a_process, args=(str(path), 3)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    reopened = JsonFileStore(path, {"s": 10, "t": 2})
    assert reopened.read_tiers(["s", "t"]) == {
        "s": TierState(1, 10, False, 3),
        "t": TierState(0, 2, False, -1),
    }
    assert [(o.sample_id, o.step) for o in reopened.history] == [("s", 3)]


def test_it_refuses_a_file_with_other_tier_counts(tmp_path: Path) -> None:
    path = tmp_path / "curriculum.json"
    JsonFileStore(path, {"s": 3})
    with pytest.raises(ValueError, match="'s' has 3 tiers in the file but 4 references"):
        JsonFileStore(path, {"s": 4})
