"""The training task on a real worker: a tiny run end to end, and a duplicate delivery."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rl_engine.models import save_tiny_model
from tests.conftest import WorkerProcess
from tests.webapp.studio.factories import make_dataset, make_instruction
from tests.webapp.studio.test_runs import tiny_config
from webapp.studio.models import CurriculumState, CurriculumTransition, Judgment, Run, StepMetric
from webapp.studio.services.runs import run_create
from webapp.studio.tasks import train_run

pytestmark = pytest.mark.services


def _wait_until_finished(run: Run, worker: WorkerProcess, timeout_s: float = 240) -> Run:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if not run.is_active:
            return run
        assert worker.process.poll() is None, worker.log()
        time.sleep(0.3)
    pytest.fail(f"run still {run.status} after {timeout_s} s:\n{worker.log()[-4000:]}")


def test_it_trains_a_run_on_a_worker_once_even_if_delivered_twice(
    celery_worker_process: WorkerProcess, settings, tmp_path: Path
) -> None:
    settings.WRITING_RL_RUNS_DIR = tmp_path / "runs"
    policy = save_tiny_model(tmp_path / "policy", seed=0)
    dataset = make_dataset()
    for _ in range(2):
        make_instruction(dataset, references=2)
    run = run_create(name="worker run", dataset=dataset, config=tiny_config(policy))
    # The same message again, as a broker re-delivers it: it must not train a second copy.
    duplicate = train_run.apply_async(args=[run.pk])

    run = _wait_until_finished(run, celery_worker_process)
    assert run.status == Run.Status.SUCCEEDED, run.error
    # Whichever copy the worker took first trained the run; the other one did nothing.
    replies = [train_run.AsyncResult(run.task_id).get(timeout=60), duplicate.get(timeout=60)]
    assert sorted(reply["claimed"] for reply in replies) == [False, True]
    assert {"run": run.pk, "claimed": False} in replies
    assert run.attempts == 1 and run.current_step == 2 and run.progress == 1.0
    assert list(StepMetric.objects.filter(run=run).values_list("step", flat=True)) == [1, 2]
    assert Judgment.objects.filter(run=run).count() == 8
    assert set(Judgment.objects.filter(run=run).values_list("verdict", flat=True)) <= {
        "win",
        "tie",
        "loss",
        "invalid",
    }
    states = CurriculumState.objects.filter(run=run)
    assert all(state.last_step == 2 and state.attempts == 2 for state in states)
    moves = CurriculumTransition.objects.filter(run=run).count()
    assert moves == sum(state.tier + int(state.mastered) for state in states)
    assert run.checkpoints.count() == 2
    assert "train_run" in celery_worker_process.log()
