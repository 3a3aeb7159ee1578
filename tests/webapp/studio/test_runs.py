"""Run services: create with a curriculum, claim once, cancel, train in-process."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from rl_engine.models import save_tiny_model
from rl_engine.training import TrainConfig
from tests.webapp.studio.factories import make_dataset, make_instruction, make_run
from webapp.studio.models import (
    AuditLog,
    CurriculumState,
    Judgment,
    Reference,
    Run,
    Selection,
    SelectionEntry,
    StepMetric,
)
from webapp.studio.services.run_execution import run_execute
from webapp.studio.services.runs import (
    RunConfigError,
    run_cancel,
    run_claim,
    run_create,
    run_training_instructions,
)

pytestmark = pytest.mark.django_db


def tiny_config(policy: Path, **changes: object) -> dict[str, object]:
    config = TrainConfig(
        policy=str(policy),
        num_generations=2,
        prompts_per_step=2,
        max_completion_tokens=5,
        kl_beta=0.0,
        learning_rate=1e-3,
        max_steps=2,
        checkpoint_every=1,
        device="cpu",
        seed=3,
    ).to_dict()
    config.update(changes)
    return config


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("policy") / "tiny", seed=0)


def test_it_creates_a_curriculum_for_instructions_with_tiered_references(
    settings, tmp_path
) -> None:
    settings.WRITING_RL_RUNS_DIR = tmp_path
    dataset = make_dataset()
    three = make_instruction(dataset, references=3)
    one = make_instruction(dataset, references=1)
    make_instruction(dataset, references=0)
    make_instruction(dataset, references=2, split="eval")
    run = run_create(name="r", dataset=dataset, config={"max_steps": 7}, enqueue=False)
    states = dict(
        CurriculumState.objects.filter(run=run).values_list("instruction_id", "num_tiers")
    )
    assert states == {three.pk: 3, one.pk: 1}
    assert run.status == Run.Status.QUEUED and run.total_steps == 7
    assert run.config["output_dir"] == str(tmp_path / f"run-{run.pk}-{run.task_id[:8]}")
    engine_view = run_training_instructions(run=run)
    assert [len(i.references) for i in engine_view] == [3, 1]
    assert engine_view[0].references[0].startswith("Reference 0")
    # A stronger reference added mid-run is found by the engine's next lookup of that tier.
    Reference.objects.create(instruction=one, writer="staff", text="Much better.", tier=1)
    assert engine_view[1].references[1] == "Much better."
    with pytest.raises(IndexError):
        engine_view[1].references[2]


def test_it_limits_the_curriculum_to_the_selection(settings, tmp_path) -> None:
    settings.WRITING_RL_RUNS_DIR = tmp_path
    dataset = make_dataset()
    chosen, left = make_instruction(dataset, references=2), make_instruction(dataset, references=2)
    selection = Selection.objects.create(dataset=dataset, strategy="margin", k=1, policy="p")
    SelectionEntry.objects.create(selection=selection, instruction=chosen, chosen=True)
    SelectionEntry.objects.create(selection=selection, instruction=left, chosen=False)
    run = run_create(name="r", dataset=dataset, config={}, selection=selection, enqueue=False)
    assert list(
        CurriculumState.objects.filter(run=run).values_list("instruction_id", flat=True)
    ) == [chosen.pk]


def test_it_refuses_a_bad_config_or_nothing_to_train() -> None:
    dataset = make_dataset()
    make_instruction(dataset, references=1)
    with pytest.raises(RunConfigError, match="num_generations"):
        run_create(name="r", dataset=dataset, config={"num_generations": 1}, enqueue=False)
    with pytest.raises(RunConfigError, match="unknown TrainConfig field"):
        run_create(name="r", dataset=dataset, config={"num_generation": 4}, enqueue=False)
    with pytest.raises(RunConfigError, match="no training instruction"):
        run_create(name="r", dataset=make_dataset(), config={}, enqueue=False)
    assert not Run.objects.exists()


def test_it_enqueues_only_after_commit(django_capture_on_commit_callbacks) -> None:
    dataset = make_dataset()
    make_instruction(dataset, references=1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run_create(name="r", dataset=dataset, config={}, enqueue=True)
    assert len(callbacks) == 1


def test_it_claims_a_run_once_and_takes_over_a_stale_one() -> None:
    run = make_run()
    assert run_claim(run.pk, worker="w1") is not None
    assert run_claim(run.pk, worker="w2") is None
    run.refresh_from_db()
    assert (run.status, run.claimed_by, run.attempts) == ("running", "w1", 1)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert run_claim(run.pk, worker="w2") is not None
    run.refresh_from_db()
    assert (run.claimed_by, run.attempts) == ("w2", 2)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.SUCCEEDED)
    assert run_claim(run.pk, worker="w3") is None


def test_it_ends_a_cancelled_run_whose_worker_died_instead_of_resuming_it() -> None:
    run = make_run(status=Run.Status.RUNNING, cancel_requested=True)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert run_claim(run.pk, worker="w") is None
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED and run.finished_at is not None


def test_it_cancels_queued_runs_at_once_and_asks_running_ones_to_stop(admin_user) -> None:
    queued, running = make_run(), make_run(status=Run.Status.RUNNING)
    run_cancel(run=queued, user=admin_user)
    run_cancel(run=running, user=admin_user)
    queued.refresh_from_db()
    running.refresh_from_db()
    assert (queued.status, queued.finished_at is not None) == ("cancelled", True)
    assert (running.status, running.cancel_requested) == ("running", True)
    assert run_claim(queued.pk) is None
    assert AuditLog.objects.filter(action="run_cancel", actor=admin_user).count() == 2


# Committed rows: the run's heartbeat thread (its own connection) must see the run, or its
# first beat (WRITING_RL_HEARTBEAT_S) ends the lease of a run that trains slowly.
@pytest.mark.django_db(transaction=True)
def test_it_trains_a_tiny_run_in_process(settings, tmp_path, tiny_policy, monkeypatch) -> None:
    monkeypatch.setenv("WRITING_RL_HEARTBEAT_S", "1")
    settings.WRITING_RL_RUNS_DIR = tmp_path
    dataset = make_dataset()
    for _ in range(2):
        make_instruction(dataset, references=2)
    run = run_create(name="tiny", dataset=dataset, config=tiny_config(tiny_policy), enqueue=False)
    assert run_claim(run.pk, worker="me")
    outcome = run_execute(run.pk, worker="me")
    run.refresh_from_db()
    assert outcome["status"] == "succeeded", run.error
    assert (run.status, run.current_step, run.progress) == ("succeeded", 2, 1.0)
    assert list(StepMetric.objects.filter(run=run).values_list("step", flat=True)) == [1, 2]
    # 2 steps x 2 prompts x 2 rollouts, each judged once (position disadvantage).
    assert Judgment.objects.filter(run=run).count() == 8
    states = CurriculumState.objects.filter(run=run)
    assert [(s.last_step, s.attempts) for s in states] == [(2, 2), (2, 2)]
    assert run.checkpoints.count() == 2
