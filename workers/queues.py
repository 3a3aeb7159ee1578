"""Queue names and task routing, in one place.

Three queues, by the resource a task holds:

* ``gpu``: rollouts, training and generation with the policy (one task per GPU at a time);
* ``judge``: calls to judge endpoints (I/O bound, high concurrency);
* ``default``: imports, selection, bookkeeping.
"""

from __future__ import annotations

from enum import StrEnum

from kombu import Exchange, Queue


class QueueName(StrEnum):
    GPU = "gpu"
    JUDGE = "judge"
    DEFAULT = "default"


EXCHANGE = Exchange("writing_rl", type="direct")

QUEUES = tuple(Queue(name.value, EXCHANGE, routing_key=name.value) for name in QueueName)


class TaskName(StrEnum):
    """Every task's name. The names keep the ``workers.tasks.<module>.<task>`` shape of the
    routes below (and of messages already queued) although the tasks live next to their app
    (``webapp/<app>/tasks.py``); services send a task by its name (:mod:`workers.dispatch`)."""

    TRAIN_RUN = "workers.tasks.training.train_run"
    RUN_PIPELINE_JOB = "workers.tasks.pipeline.run_pipeline_job"
    RECOVER_LOST_WORK = "workers.tasks.system.recover_lost_work"
    PING = "workers.tasks.system.ping"
    GENERATE_CAMPAIGN_OUTPUTS = "workers.tasks.annotation.generate_campaign_outputs"
    JUDGE_CAMPAIGN = "workers.tasks.annotation.judge_campaign"
    GENERATE_EVAL_RUN = "workers.tasks.evaluation.generate_eval_run"
    JUDGE_EVAL_RUN = "workers.tasks.evaluation.judge_eval_run"
    WATCH_ABLATION_GRID = "workers.tasks.evaluation.watch_ablation_grid"


# Task name (glob) -> queue. A task not named here runs on the default queue.
ROUTES: dict[str, QueueName] = {
    "workers.tasks.training.*": QueueName.GPU,
    "workers.tasks.generation.*": QueueName.GPU,
    "workers.tasks.evaluation.generate_*": QueueName.GPU,
    "workers.tasks.judging.*": QueueName.JUDGE,
    "workers.tasks.evaluation.judge_*": QueueName.JUDGE,
    "workers.tasks.annotation.generate_*": QueueName.GPU,
    "workers.tasks.annotation.judge_*": QueueName.JUDGE,
}


# Pipeline jobs share one task (:attr:`TaskName.RUN_PIPELINE_JOB`); the job's kind
# decides its queue: writing with local models needs the GPU, grading calls a judge endpoint,
# selection and tier ordering are bookkeeping.
PIPELINE_JOB_QUEUES: dict[str, QueueName] = {
    "generate_references": QueueName.GPU,
    "policy_responses": QueueName.GPU,
    "score_references": QueueName.JUDGE,
    "select": QueueName.DEFAULT,
    "order_tiers": QueueName.DEFAULT,
}


def pipeline_job_queue(kind: str) -> QueueName:
    """The queue a pipeline job of ``kind`` runs on (default for an unknown kind)."""
    return PIPELINE_JOB_QUEUES.get(kind, QueueName.DEFAULT)


def task_routes() -> dict[str, dict[str, str]]:
    """Celery's ``task_routes`` setting built from :data:`ROUTES`."""
    return {
        pattern: {"queue": queue.value, "routing_key": queue.value}
        for pattern, queue in ROUTES.items()
    }
