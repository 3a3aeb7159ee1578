"""Evaluation tasks: generation on the GPU queue, judging on the judge queue, and the watcher
that evaluates the runs of an ablation grid as they finish.

The tasks are thin: the phases live in ``webapp.evals.services`` (which claims each phase
through the database, so a re-delivered message does nothing twice).
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import uuid4

from celery import shared_task

from workers.tasks.heartbeat import worker_name

log = logging.getLogger(__name__)

# How often the ablation watcher looks at its grid's training runs.
WATCH_EVERY_S = 30


@shared_task(
    name="workers.tasks.evaluation.generate_eval_run",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def generate_eval_run(self: Any, eval_run_id: int) -> dict[str, object]:
    """Write the system's responses, then hand the run to the judge queue."""
    from webapp.evals.models import EvalRun
    from webapp.evals.services.execution import eval_run_generate
    from webapp.evals.services.jobs import EVAL_JUDGE_KIND
    from webapp.studio.services.leases import send_now

    worker = worker_name(self.request.id or uuid4().hex)
    generated = eval_run_generate(eval_run_id, worker=worker)
    if generated:
        send_now(EVAL_JUDGE_KIND, EvalRun.objects.get(pk=eval_run_id))
    return {"eval_run": eval_run_id, "generated": generated}


@shared_task(
    name="workers.tasks.evaluation.judge_eval_run",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def judge_eval_run(self: Any, eval_run_id: int) -> dict[str, object]:
    """Judge the stored responses and aggregate."""
    from webapp.evals.services.execution import eval_run_judge

    worker = worker_name(self.request.id or uuid4().hex)
    return {"eval_run": eval_run_id, "succeeded": eval_run_judge(eval_run_id, worker=worker)}


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
