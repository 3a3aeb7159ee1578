"""Faults on the broker (a private redis-server without persistence): a job whose message is
lost with a broker restart is sent again by the sweep and finished; a sweep that runs while
the broker is down marks nothing, and the first pass after the broker returns sends the job."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from rl_engine.testing import ChatCall, FakeOpenAIServer
from tests.faults.harness import private_redis, require_services, sending_to, wait_for, worker
from tests.webapp.studio.factories import make_dataset, make_instruction
from webapp.studio.models import AuditLog, PipelineJob, Reference
from webapp.studio.services.pipeline import job_create, jobs_recover_stale

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def answer(call: ChatCall) -> str:
    return f"Lanterns over the quay, {call.user.strip()[-12:]} " * 3


def grading_job(
    monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer, count: int = 3
) -> PipelineJob:
    dataset = make_dataset()
    for i in range(count):
        make_instruction(dataset, prompt=f"Write about lanterns, {i}.")
    monkeypatch.setenv(  # the deployment declares the writer's endpoint (workers inherit it)
        "WRITING_RL_ENDPOINTS", json.dumps([{"name": "fake", "base_url": server.base_url}])
    )
    writer = {"name": "gpt", "endpoint": "fake", "model": "m"}
    return job_create(kind="generate_references", dataset=dataset, params={"writers": [writer]})


def finished_once(job: PipelineJob, count: int = 3) -> None:
    job.refresh_from_db()
    assert job.status == PipelineJob.Status.SUCCEEDED, job.error
    assert job.attempts == 1 and job.result["written"] == count
    assert Reference.objects.filter(metadata__job=job.pk).count() == count


def test_a_queued_job_whose_message_a_broker_restart_lost_is_sent_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_services()
    with private_redis(tmp_path) as broker, FakeOpenAIServer(latency_s=0.0, policy=answer) as s:
        with sending_to(broker.url):
            job = grading_job(monkeypatch, s)
        job.refresh_from_db()
        assert job.status == "queued" and job.enqueued_at is not None  # sent, nobody took it
        broker.restart()  # no persistence: the message is gone
        with worker(tmp_path, "after-restart", beat=True, broker=broker.url) as w:
            wait_for(
                lambda: PipelineJob.objects.get(pk=job.pk).status == "succeeded",
                "the job to be sent again and finished",
                alive=(w,),
            )
    finished_once(job)
    resends = AuditLog.objects.filter(action="job_resend", details__job=job.pk)
    assert resends.count() >= 1


def test_a_sweep_while_the_broker_is_down_sends_on_the_first_pass_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_services()
    with private_redis(tmp_path) as broker, FakeOpenAIServer(latency_s=0.0, policy=answer) as s:
        with sending_to(broker.url):
            broker.stop()
            job = grading_job(monkeypatch, s)  # created while the broker is down: saved, not sent
            job.refresh_from_db()
            assert job.status == "queued" and job.enqueued_at is None
            later = timezone.now() + timedelta(minutes=1)
            down = jobs_recover_stale(now=later)
            assert (down.resent, down.failed) == ([], [job.pk])
            assert not AuditLog.objects.exists()  # nothing claimed that did not happen
            broker.start()
            back = jobs_recover_stale(now=later)
            assert (back.resent, back.failed) == ([job.pk], [])
        with worker(tmp_path, "after-outage", broker=broker.url) as w:
            wait_for(
                lambda: PipelineJob.objects.get(pk=job.pk).status == "succeeded",
                "the job to finish",
                alive=(w,),
            )
    finished_once(job)
    assert AuditLog.objects.filter(action="job_resend", details__job=job.pk).count() == 1
