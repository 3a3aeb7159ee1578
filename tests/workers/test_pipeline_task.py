"""A pipeline job through a real worker: claimed once, progress and result in its row."""

from __future__ import annotations

import time

import pytest

from tests.conftest import WorkerProcess
from tests.webapp.studio.factories import make_dataset, make_instruction
from webapp.studio.models import PipelineJob, Reference
from webapp.studio.services.pipeline import job_create
from webapp.studio.tasks import run_pipeline_job

pytestmark = pytest.mark.services


def test_it_runs_a_pipeline_job_on_a_worker(celery_worker_process: WorkerProcess) -> None:
    dataset = make_dataset()
    instruction = make_instruction(dataset, prompt="Write 12 words about tea.")
    for writer, text in [("loop", "tea " * 30), ("fine", "Green tea in the morning wakes me.")]:
        Reference.objects.create(instruction=instruction, writer=writer, text=text)
    score = job_create(kind="score_references", dataset=dataset, params={})
    deadline = time.monotonic() + 120
    while PipelineJob.objects.get(pk=score.pk).status != "succeeded":
        assert time.monotonic() < deadline, celery_worker_process.log()[-3000:]
        time.sleep(0.2)
    order = job_create(kind="order_tiers", dataset=dataset, params={})
    again = run_pipeline_job.apply_async(args=[order.pk])  # a duplicate delivery
    while PipelineJob.objects.get(pk=order.pk).status != "succeeded":
        assert time.monotonic() < deadline, celery_worker_process.log()[-3000:]
        time.sleep(0.2)
    # Whichever copy the worker took first ran the job; the other one did nothing.
    first = run_pipeline_job.AsyncResult(order.task_id).get(timeout=60)
    second = again.get(timeout=60)
    assert sorted([first["claimed"], second["claimed"]]) == [False, True]
    score.refresh_from_db()
    assert (score.progress, score.result["scored"]) == (1.0, 2)
    assert dict(instruction.references.values_list("writer", "tier")) == {"loop": 0, "fine": 1}


def test_it_routes_every_pipeline_job_kind_explicitly() -> None:
    from workers.queues import PIPELINE_JOB_QUEUES, QueueName

    assert set(PIPELINE_JOB_QUEUES) == set(PipelineJob.Kind.values)
    assert PIPELINE_JOB_QUEUES["generate_references"] == QueueName.GPU
    assert PIPELINE_JOB_QUEUES["score_references"] == QueueName.JUDGE
