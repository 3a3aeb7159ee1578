"""Faults on the broker (a private redis-server without persistence): a job whose message is
lost with a broker restart is sent again by the sweep and finished; a sweep that runs while
the broker is down marks nothing, and the first pass after the broker returns sends the job.
For a pipeline job, then for every other kind at once (a training run, an evaluation, a
campaign's output generation, a judge run)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

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


# -- every other kind: a training run, an evaluation, a campaign's generation, a judge run --


def other_jobs(tmp_path: Path, settings: Any) -> dict[str, Any]:
    """One job of every other kind, created now (each sends its task on commit): a one-step
    training run, an evaluation, a campaign that generates outputs, a judge run over an open
    campaign. The heuristic judge everywhere, the tiny random-init model for generation."""
    from django.contrib.auth.models import User

    from rl_engine.models import save_tiny_model
    from tests.webapp.studio.test_runs import tiny_config
    from webapp.annotation.services.campaigns import SystemSpec, campaign_create
    from webapp.annotation.services.judge_runs import judge_run_create
    from webapp.evals.services.eval_runs import eval_run_create
    from webapp.studio.services.runs import run_create

    settings.WRITING_RL_RUNS_DIR = tmp_path / "runs"
    policy = save_tiny_model(tmp_path / "policy", seed=0)
    dataset = make_dataset()
    for i in range(2):
        make_instruction(
            dataset, references=3, prompt=f"Write about lanterns, {i}.", required_words=40
        )
    prompts = list(dataset.instructions.order_by("pk"))
    annotator = User.objects.create_user("annotator")
    judged = campaign_create(
        name="judged", instructions=prompts, annotators=[annotator],
        systems=[SystemSpec(kind="reference", reference_tier=t) for t in (0, 1)],
    )  # fmt: skip
    return {
        "run": run_create(
            name="run", dataset=dataset, config=tiny_config(policy, max_steps=1)
        ),
        "evaluation": eval_run_create(
            benchmark="longbench_write", system_kind="base_model", base_model=str(policy),
            dataset=dataset, split="", settings={"max_new_tokens": 4},
            judge={"endpoint": "heuristic"},
        ),
        "campaign": campaign_create(
            name="generated", instructions=prompts, annotators=[annotator], max_new_tokens=4,
            systems=[SystemSpec(kind="base_policy", policy=str(policy), label="tiny"),
                     SystemSpec(kind="reference", reference_tier=0)],
        ),
        "judge run": judge_run_create(campaign=judged, spec={"endpoint": "heuristic"}),
    }  # fmt: skip


FINISHED = {
    "run": "succeeded",
    "evaluation": "succeeded",
    "campaign": "open",
    "judge run": "succeeded",
}
PREFIX = {"run": "run", "evaluation": "eval", "campaign": "campaign", "judge run": "judge_run"}


def statuses(jobs: dict[str, Any]) -> dict[str, str]:
    return {name: type(row).objects.get(pk=row.pk).status for name, row in jobs.items()}


def all_finished_once(jobs: dict[str, Any]) -> None:
    assert statuses(jobs) == FINISHED, {
        n: type(r).objects.get(pk=r.pk).error for n, r in jobs.items()
    }
    epochs = {name: type(row).objects.get(pk=row.pk).epoch for name, row in jobs.items()}
    # One claim each (the evaluation: generation, then judging): nothing ran twice.
    assert epochs == {"run": 1, "evaluation": 2, "campaign": 1, "judge run": 1}


def test_queued_jobs_of_every_other_kind_whose_messages_a_broker_restart_lost_are_sent_again(
    tmp_path: Path, settings: Any
) -> None:
    require_services()
    with private_redis(tmp_path) as broker:
        with sending_to(broker.url):
            jobs = other_jobs(tmp_path, settings)
        for name, row in jobs.items():
            row = type(row).objects.get(pk=row.pk)
            assert row.enqueued_at is not None and not row.claimed_by, name  # sent, not taken
        broker.restart()  # no persistence: every message is gone
        with worker(tmp_path, "after-restart", beat=True, broker=broker.url) as w:
            wait_for(
                lambda: statuses(jobs) == FINISHED, "every job sent again and finished",
                alive=(w,), timeout=420,
            )  # fmt: skip
    all_finished_once(jobs)
    for name in jobs:
        resent = AuditLog.objects.filter(action=f"{PREFIX[name]}_resend")
        assert resent.exists(), name


def test_a_sweep_while_the_broker_is_down_sends_every_other_kind_on_the_first_pass_after(
    tmp_path: Path, settings: Any
) -> None:
    from webapp.ops.recovery import job_kinds
    from webapp.studio.services.leases import sweep_kind

    require_services()
    with private_redis(tmp_path) as broker:
        with sending_to(broker.url):
            broker.stop()
            jobs = other_jobs(tmp_path, settings)  # created while the broker is down: not sent
            for name, row in jobs.items():
                assert type(row).objects.get(pk=row.pk).enqueued_at is None, name
            later = timezone.now() + timedelta(minutes=1)
            kinds = [k for k in job_kinds() if k.name != "pipeline job"]
            down = {k.name: sweep_kind(k, now=later) for k in kinds}
            expected = sorted((type(row).__name__, row.pk) for row in jobs.values())
            failed = sorted((k.model.__name__, pk) for k in kinds for pk in down[k.name].failed)
            assert failed == expected  # every send failed, and each is left to the next pass
            assert all(s.resent == [] and s.requeued == [] for s in down.values())
            assert not AuditLog.objects.exists()  # nothing claimed that did not happen
            broker.start()
            back = {k.name: sweep_kind(k, now=later) for k in kinds}
        sent = sorted((k.model.__name__, pk) for k in kinds for pk in back[k.name].resent)
        assert sent == expected and all(s.failed == [] for s in back.values())
        with worker(tmp_path, "after-outage", broker=broker.url) as w:
            wait_for(
                lambda: statuses(jobs) == FINISHED, "every job to finish", alive=(w,), timeout=420
            )
    all_finished_once(jobs)
    for name in jobs:
        assert AuditLog.objects.filter(action=f"{PREFIX[name]}_resend").count() == 1, name
