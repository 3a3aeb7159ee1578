"""Faults on a training run (the tiny random-init policy, a few steps on CPU): a worker killed
mid-run is resumed from its checkpoint by another; a worker stopped past the stale time is taken
over by a second worker and, when it continues, writes nothing. Either way the run ends exactly
as an uninterrupted run of the same seed — same judgments, transitions, curriculum counters,
metrics and checkpoint files."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from rl_engine.models import save_tiny_model
from tests.faults.harness import require_services, wait_for, worker
from tests.webapp.studio.factories import make_dataset, make_instruction
from tests.webapp.studio.test_runs import tiny_config
from webapp.studio.models import (
    Checkpoint,
    CurriculumState,
    CurriculumTransition,
    Judgment,
    Run,
    StepMetric,
)
from webapp.studio.services.run_execution import run_execute
from webapp.studio.services.runs import run_claim, run_create

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

STEPS = 4


def final_rows(run: Run) -> dict[str, Any]:
    """What a run leaves behind, in a form two runs of the same seed can be compared by."""
    return {
        "judgments": sorted(
            Judgment.objects.filter(run=run).values_list(
                "step", "instruction_id", "reference_tier", "verdict", "rollout"
            )
        ),
        "transitions": sorted(
            CurriculumTransition.objects.filter(run=run, cause="training").values_list(
                "instruction_id", "step", "from_tier", "to_tier", "mastered"
            )
        ),
        "curriculum": sorted(
            CurriculumState.objects.filter(run=run).values_list(
                "instruction_id",
                "tier",
                "mastered",
                "last_step",
                "attempts",
                "wins",
                "ties",
                "losses",
                "invalid",
            )
        ),
        "steps": list(StepMetric.objects.filter(run=run).values_list("step", flat=True)),
        "checkpoints": list(Checkpoint.objects.filter(run=run).values_list("step", flat=True)),
    }


def checkpoint_files(run: Run) -> dict[str, tuple[int, int]]:
    """Each checkpoint folder of the run: (trainer step, curriculum step) as saved."""
    found = {}
    for folder in sorted(Path(run.output_dir).glob("checkpoint-*")):
        trainer = json.loads((folder / "trainer_state.json").read_text())["global_step"]
        curriculum = json.loads((folder / "curriculum.json").read_text())["step"]
        found[folder.name] = (trainer, curriculum)
    return found


def uninterrupted(settings: Any, tmp_path: Path) -> tuple[Any, dict[str, Any], Run]:
    """The faulted runs' dataset and config (the tiny policy, a checkpoint each step), and the
    run of that config trained in this process without a fault, to compare them with."""
    require_services()
    settings.WRITING_RL_RUNS_DIR = tmp_path / "runs"
    policy = save_tiny_model(tmp_path / "policy", seed=0)
    dataset = make_dataset()
    for _ in range(2):
        make_instruction(dataset, references=3)
    config = tiny_config(policy, max_steps=STEPS, checkpoint_every=1)
    baseline = run_create(name="baseline", dataset=dataset, config=config, enqueue=False)
    lease = run_claim(baseline.pk, worker="baseline")
    assert run_execute(baseline.pk, worker="baseline", lease=lease)["status"] == "succeeded"
    return dataset, config, baseline


def test_a_stopped_worker_taken_over_writes_nothing_and_the_run_ends_as_uninterrupted(
    settings: Any, tmp_path: Path
) -> None:
    dataset, config, baseline = uninterrupted(settings, tmp_path)

    with worker(tmp_path, "sleeper") as sleeper:
        run = run_create(name="faulted", dataset=dataset, config=config)
        wait_for(
            lambda: Checkpoint.objects.filter(run=run, step__gte=2).exists(),
            "checkpoint 2",
            alive=(sleeper,),
        )
        os.kill(sleeper.process.pid, signal.SIGSTOP)
        with worker(tmp_path, "rescuer", beat=True) as rescuer:
            wait_for(
                lambda: Run.objects.get(pk=run.pk).status != "running",
                "the takeover to finish the run",
                alive=(rescuer,),
            )
            run.refresh_from_db()
            after_takeover = (final_rows(run), checkpoint_files(run), run.current_step)
            os.kill(sleeper.process.pid, signal.SIGCONT)
            wait_for(lambda: "no longer held" in sleeper.log(), "the old worker", timeout=90)
            time.sleep(2)
        log = sleeper.log()

    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert (run.epoch, run.attempts, run.current_step) == (2, 2, STEPS)
    assert f":{rescuer.process.pid}:" in run.claimed_by
    # The old worker, continued, changed nothing.
    assert (final_rows(run), checkpoint_files(run), run.current_step) == after_takeover
    # And the run is the uninterrupted one.
    assert final_rows(run) == final_rows(baseline)
    assert checkpoint_files(run) == checkpoint_files(baseline)
    assert all(trainer == step for trainer, step in checkpoint_files(run).values())
    assert "no longer held" in log


def test_a_killed_worker_is_resumed_from_its_checkpoint_and_the_run_ends_as_uninterrupted(
    settings: Any, tmp_path: Path
) -> None:
    dataset, config, baseline = uninterrupted(settings, tmp_path)

    with worker(tmp_path, "doomed") as doomed:
        run = run_create(name="faulted", dataset=dataset, config=config)
        wait_for(
            lambda: Checkpoint.objects.filter(run=run, step__gte=2).exists(),
            "checkpoint 2",
            alive=(doomed,),
        )
        os.kill(doomed.process.pid, signal.SIGKILL)  # the task's process, without a warning
        doomed.process.wait(timeout=30)
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING and run.current_step < STEPS
    # The sweep of a new worker finds the stale lease, and the run resumes from checkpoint 2.
    with worker(tmp_path, "rescuer", beat=True) as rescuer:
        wait_for(
            lambda: Run.objects.get(pk=run.pk).status != "running",
            "the resumed run to finish",
            alive=(rescuer,),
        )
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert (run.epoch, run.attempts, run.current_step) == (2, 2, STEPS)
    assert f":{rescuer.process.pid}:" in run.claimed_by
    # Finished once: exactly the uninterrupted run's rows and checkpoint files.
    assert final_rows(run) == final_rows(baseline)
    assert checkpoint_files(run) == checkpoint_files(baseline)
