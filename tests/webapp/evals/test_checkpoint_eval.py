"""A trained checkpoint as the system: train a tiny grid cell, then evaluate what it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from rl_engine.training import TrainConfig
from tests.webapp.evals.factories import make_dataset, make_instruction
from webapp.evals.models import EvalRun
from webapp.evals.services.ablations import ablation_grid_advance, ablation_grid_create
from webapp.evals.services.eval_runs import eval_run_create
from webapp.evals.services.execution import eval_run_execute
from webapp.studio.services.run_execution import run_execute
from webapp.studio.services.runs import run_claim

# Evaluations report progress from a worker thread (its own database connection), as they do
# in a Celery task: the test's data must be committed, or SQLite's write lock held by the
# test's open transaction blocks that thread.
pytestmark = pytest.mark.django_db(transaction=True)


def test_it_evaluates_the_checkpoint_of_a_finished_grid_run(
    settings, tmp_path: Path, tiny_policy: Path
) -> None:
    settings.WRITING_RL_RUNS_DIR = tmp_path
    dataset = make_dataset()
    for n in range(2):
        make_instruction(dataset, split="train", references=["short", "a longer reference"])
        make_instruction(dataset, prompt=f"Write {n + 1}00 words.", required_words=100 * (n + 1))
    base = TrainConfig(
        policy=str(tiny_policy), num_generations=2, prompts_per_step=2, max_completion_tokens=5,
        kl_beta=0.0, learning_rate=1e-3, max_steps=2, checkpoint_every=1, device="cpu", seed=3,
    ).to_dict()  # fmt: skip
    grid = ablation_grid_create(
        name="one cell", dataset=dataset, base_config=base, selections=["full"],
        rewards=["pairwise"], curricula=["static"], eval_benchmark="longbench_write",
        eval_settings={"max_new_tokens": 6}, eval_judge={"kind": "heuristic"}, enqueue=False,
    )  # fmt: skip
    (cell,) = grid.cells.all()
    assert cell.run.config["curriculum"] == "static"
    assert run_claim(cell.run_id, worker="me")
    assert run_execute(cell.run_id, worker="me")["status"] == "succeeded"

    assert ablation_grid_advance(grid.pk, enqueue=False).created == 1
    cell.refresh_from_db()
    eval_run = eval_run_execute(cell.eval_run_id)
    assert eval_run.status == EvalRun.Status.SUCCEEDED, eval_run.error
    # The grid evaluates what training ended with: the run's final model.
    assert eval_run.system_kind == "base_model" and eval_run.base_model.endswith("final")
    assert eval_run.system_label == f"run {cell.run_id} · final"
    assert eval_run.results.count() == 2  # the eval split only
    assert eval_run.aggregates["S_bar"] is not None

    # An intermediate checkpoint (a TRL checkpoint directory) evaluates as a system too.
    checkpoint = cell.run.checkpoints.get(step=1)
    at_step_1 = eval_run_execute(
        eval_run_create(
            benchmark="longbench_write", system_kind="checkpoint", checkpoint=checkpoint,
            dataset=dataset, settings={"max_new_tokens": 6}, judge={"kind": "heuristic"},
            enqueue=False,
        ).pk
    )  # fmt: skip
    assert at_step_1.status == EvalRun.Status.SUCCEEDED, at_step_1.error
    assert at_step_1.training_run_id == cell.run_id
    assert at_step_1.system_label == f"run {cell.run_id} · step 1"
