"""Pipeline jobs whose worker was lost: claimed again, resumed where that worker stopped, and
sent to a live worker by the sweep."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from rl_engine.models import tiny_model
from rl_engine.testing import ChatCall, FakeOpenAIServer
from tests.webapp.studio.factories import make_dataset, make_instruction
from webapp.studio.models import AuditLog, PipelineJob, PolicyResponse, Reference
from webapp.studio.services.leases import STALE_AFTER
from webapp.studio.services.pipeline import (
    job_claim,
    job_create,
    job_execute,
    job_finish,
    job_heartbeat,
    jobs_recover_stale,
    policy_responses_generate,
)
from webapp.studio.tasks import run_pipeline_job

pytestmark = pytest.mark.django_db


def lose_worker(job: PipelineJob) -> PipelineJob:
    PipelineJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - 2 * STALE_AFTER)
    job.refresh_from_db()
    return job


def test_a_job_is_claimed_once_and_again_only_when_its_worker_is_lost() -> None:
    job = job_create(kind="order_tiers", dataset=make_dataset(), params={}, enqueue=False)
    assert job_claim(job.pk, worker="w1") and not job_claim(job.pk, worker="w2")
    assert job_heartbeat(job.pk, worker="w1") and not job_heartbeat(job.pk, worker="w2")
    job = lose_worker(job)
    assert job.worker_lost
    assert job_claim(job.pk, worker="w2")
    job.refresh_from_db()
    assert (job.claimed_by, job.attempts, job.worker_lost) == ("w2", 2, False)
    # The lost worker, should it come back, can no longer record an outcome.
    assert not job_finish(job.pk, status="succeeded", worker="w1")
    assert job_finish(job.pk, status="succeeded", worker="w2")


def test_a_lost_job_that_was_asked_to_stop_ends_as_cancelled() -> None:
    job = job_create(kind="order_tiers", dataset=make_dataset(), params={}, enqueue=False)
    assert job_claim(job.pk, worker="w1")
    PipelineJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    lose_worker(job)
    assert not job_claim(job.pk, worker="w2")
    assert PipelineJob.objects.get(pk=job.pk).status == "cancelled"


def test_a_resumed_generation_writes_only_what_the_lost_worker_had_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dataset = make_dataset()
    instructions = [make_instruction(dataset, prompt=f"Tides, part {i}.") for i in range(3)]
    asked: list[str] = []

    def policy(call: ChatCall) -> str:
        asked.append(call.user)
        return "Tides rise and fall twice a day. " * 5

    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        monkeypatch.setenv(
            "WRITING_RL_ENDPOINTS", json.dumps([{"name": "fake", "base_url": server.base_url}])
        )
        writer = {"name": "gpt", "endpoint": "fake", "model": "m"}
        job = job_create(
            kind="generate_references",
            dataset=dataset,
            params={"writers": [writer]},
            enqueue=False,
        )
        assert job_claim(job.pk, worker="lost")
        # What the lost worker wrote before it died: the first two, tagged with the job.
        for instruction in instructions[:2]:
            Reference.objects.create(
                instruction=instruction, writer="gpt", text="before", metadata={"job": job.pk}
            )
        # A reference by the same writer name from another job does not count as done.
        Reference.objects.create(
            instruction=instructions[2], writer="gpt", text="older job", metadata={"job": -1}
        )
        job = lose_worker(job)
        assert job_claim(job.pk, worker="rescuer")
        job.refresh_from_db()
        result = job_execute(job)
    assert result == {"written": 1, "failed": 0, "errors": [], "resumed": 2}
    assert len(asked) == 1 and "part 2" in asked[0]
    assert Reference.objects.filter(metadata__job=job.pk).count() == 3
    assert PipelineJob.objects.get(pk=job.pk).progress == 1.0


def test_a_resumed_rescoring_skips_what_it_already_graded() -> None:
    dataset = make_dataset()
    instruction = make_instruction(dataset, prompt="Write 20 words about tea.")
    job = job_create(
        kind="score_references", dataset=dataset, params={"rescore": True}, enqueue=False
    )
    graded = Reference.objects.create(
        instruction=instruction, writer="a", text="tea " * 20, score=7.0,
        metadata={"score_job": job.pk},
    )  # fmt: skip
    pending = Reference.objects.create(
        instruction=instruction, writer="b", text="Green tea wakes me up.", score=9.0
    )
    assert job_claim(job.pk, worker="lost")
    lose_worker(job)
    assert job_claim(job.pk, worker="rescuer")
    result = job_execute(PipelineJob.objects.get(pk=job.pk))
    assert result["scored"] == 1
    graded.refresh_from_db()
    pending.refresh_from_db()
    assert graded.score == 7.0  # kept: graded by this job before its worker was lost
    assert pending.metadata["score_job"] == job.pk and pending.score != 9.0


def test_resumed_policy_responses_skip_only_what_this_job_answered() -> None:
    dataset = make_dataset()
    first, second, third = (
        make_instruction(dataset, prompt=f"Write about rain, {i}.") for i in (1, 2, 3)
    )
    job = job_create(kind="policy_responses", dataset=dataset, params={}, enqueue=False)
    other = job_create(kind="policy_responses", dataset=dataset, params={}, enqueue=False)
    # This job answered the first before its worker was lost; another job of the same policy
    # answered the second meanwhile: the resumed job still owes the second and the third.
    PolicyResponse.objects.create(instruction=first, policy="tiny", text="rain", job=job)
    PolicyResponse.objects.create(instruction=second, policy="tiny", text="rain", job=other)
    result = policy_responses_generate(
        dataset=dataset, policy="tiny", max_new_tokens=4, model=tiny_model(seed=0), job_id=job.pk
    )
    assert result == {"responses": 2, "graded": 2, "failed": 0, "errors": [], "resumed": 1}
    mine = PolicyResponse.objects.filter(job=job)
    assert sorted(mine.values_list("instruction_id", flat=True)) == [
        first.pk, second.pk, third.pk
    ]  # fmt: skip


def test_the_sweep_sends_a_lost_job_to_its_queue_once(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(run_pipeline_job, "apply_async", lambda **kw: sent.append(kw))
    dataset = make_dataset()
    job = job_create(kind="score_references", dataset=dataset, params={}, enqueue=False)
    alive = job_create(kind="order_tiers", dataset=dataset, params={}, enqueue=False)
    assert job_claim(job.pk, worker="lost") and job_claim(alive.pk, worker="alive")
    lose_worker(job)
    with django_capture_on_commit_callbacks(execute=True):
        sweep = jobs_recover_stale()
        assert jobs_recover_stale().requeued == []  # once per loss
    assert (sweep.requeued, sweep.cancelled) == ([job.pk], [])
    assert sent == [
        {"args": [job.pk], "task_id": job.task_id, "queue": "judge", "routing_key": "judge"}
    ]
    entry = AuditLog.objects.get(action="job_requeue")
    assert entry.details["job"] == job.pk and entry.details["claimed_by"] == "lost"


def test_the_dataset_page_marks_a_job_whose_worker_was_lost(admin_client: Any) -> None:
    dataset = make_dataset()
    job = job_create(kind="score_references", dataset=dataset, params={}, enqueue=False)
    assert job_claim(job.pk, worker="w1")
    url = reverse("studio:dataset_detail", args=[dataset.pk])
    assert "worker lost" not in admin_client.get(url).content.decode()
    lose_worker(job)
    assert "worker lost" in admin_client.get(url).content.decode()
