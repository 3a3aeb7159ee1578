"""Celery tasks of the studio: train a run (GPU queue) and run a pipeline job (its kind's
queue). The beat sweep that hands lost work to a live worker is in ``webapp.ops.tasks``.

Thin adapters: each names its worker and calls a service. ``acks_late`` +
``reject_on_worker_lost``: the broker keeps the message until the task ends, so the work of a
lost worker is delivered again; the services' database claims make a duplicate do nothing.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from webapp.studio.services.leases import worker_name
from webapp.studio.services.pipeline import job_run
from webapp.studio.services.run_execution import run_train
from workers.queues import TaskName


@shared_task(name=TaskName.TRAIN_RUN.value, bind=True, acks_late=True, reject_on_worker_lost=True)
def train_run(self: Any, run_id: int) -> dict[str, Any]:
    """Claim run ``run_id`` and train it; a run someone else holds or that ended is skipped."""
    return run_train(run_id, worker=worker_name(self.request.id))


@shared_task(
    name=TaskName.RUN_PIPELINE_JOB.value, bind=True, acks_late=True, reject_on_worker_lost=True
)
def run_pipeline_job(self: Any, job_id: int) -> dict[str, Any]:
    """Claim job ``job_id`` (a re-delivered message for a claimed job does nothing) and run it."""
    return job_run(job_id, worker=worker_name(self.request.id))
