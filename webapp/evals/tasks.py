"""Celery tasks of evaluation: generation on the GPU queue, judging on the judge queue, and the
watcher that evaluates the runs of an ablation grid as they finish.

Thin adapters: the phases live in ``webapp.evals.services`` (which claims each phase with a
lease, so a re-delivered message does nothing twice).
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from celery import shared_task

from webapp.evals.services.ablations import ablation_grid_watch
from webapp.evals.services.execution import eval_run_generate, eval_run_judge
from webapp.evals.services.jobs import eval_run_hand_to_judging
from webapp.studio.services.leases import worker_name
from workers.queues import TaskName


@shared_task(
    name=TaskName.GENERATE_EVAL_RUN.value, bind=True, acks_late=True, reject_on_worker_lost=True
)
def generate_eval_run(self: Any, eval_run_id: int) -> dict[str, object]:
    """Write the system's responses, then hand the run to the judge queue."""
    generated = eval_run_generate(eval_run_id, worker=worker_name(self.request.id or uuid4().hex))
    if generated:
        eval_run_hand_to_judging(eval_run_id)
    return {"eval_run": eval_run_id, "generated": generated}


@shared_task(
    name=TaskName.JUDGE_EVAL_RUN.value, bind=True, acks_late=True, reject_on_worker_lost=True
)
def judge_eval_run(self: Any, eval_run_id: int) -> dict[str, object]:
    """Judge the stored responses and aggregate."""
    worker = worker_name(self.request.id or uuid4().hex)
    return {"eval_run": eval_run_id, "succeeded": eval_run_judge(eval_run_id, worker=worker)}


@shared_task(name=TaskName.WATCH_ABLATION_GRID.value)
def watch_ablation_grid(grid_id: int) -> dict[str, object]:
    """Create the evaluation of every finished run of the grid (and of the base policy),
    compare the evaluated ones with the base policy; look again later while some training
    run or evaluation is still active."""
    progress = ablation_grid_watch(grid_id)
    return {
        "grid": grid_id,
        "active_runs": progress.active_runs,
        "created": progress.created,
        "pending": progress.pending,
        "compared": progress.compared,
    }
