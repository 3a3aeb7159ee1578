"""Evaluation tasks: generation on the GPU queue, judging on the judge queue, and the watcher
that evaluates the runs of an ablation grid as they finish.

The tasks are thin: the phases live in ``webapp.evals.services`` (which claims each phase
through the database, so a re-delivered message does nothing twice).
"""

from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)

# How often the ablation watcher looks at its grid's training runs.
WATCH_EVERY_S = 30


@shared_task(
    name="workers.tasks.evaluation.generate_eval_run", acks_late=True, reject_on_worker_lost=True
)
def generate_eval_run(eval_run_id: int) -> dict[str, object]:
    """Write the system's responses, then hand the run to the judge queue."""
    from webapp.evals.services.execution import eval_run_generate

    generated = eval_run_generate(eval_run_id)
    if generated:
        judge_eval_run.apply_async(args=[eval_run_id])
    return {"eval_run": eval_run_id, "generated": generated}


@shared_task(
    name="workers.tasks.evaluation.judge_eval_run", acks_late=True, reject_on_worker_lost=True
)
def judge_eval_run(eval_run_id: int) -> dict[str, object]:
    """Judge the stored responses and aggregate."""
    from webapp.evals.services.execution import eval_run_judge

    return {"eval_run": eval_run_id, "succeeded": eval_run_judge(eval_run_id)}


@shared_task(name="workers.tasks.evaluation.watch_ablation_grid")
def watch_ablation_grid(grid_id: int) -> dict[str, object]:
    """Create the evaluation of every finished run of the grid (and of the base policy),
    compare the evaluated ones with the base policy; look again later while some training
    run or evaluation is still active."""
    from webapp.evals.services.ablations import ablation_grid_advance

    progress = ablation_grid_advance(grid_id)
    if progress.active_runs or progress.pending:
        watch_ablation_grid.apply_async(args=[grid_id], countdown=WATCH_EVERY_S)
    return {
        "grid": grid_id,
        "active_runs": progress.active_runs,
        "created": progress.created,
        "pending": progress.pending,
        "compared": progress.compared,
    }
