"""Token accounting: written references, grades, pipeline jobs, runs and campaigns store what
their model calls cost (requests and reported tokens), and a declared price gives the cost."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from rl_engine.models import tiny_model
from rl_engine.testing.openai_server import FakeOpenAIServer, Fault
from tests.webapp.annotation.factories import make_campaign
from tests.webapp.studio.factories import make_dataset, make_instruction, make_run
from webapp.annotation.models import JudgeVote
from webapp.annotation.services import jobs
from webapp.annotation.services.judge_runs import judge_run_create
from webapp.studio.models import Judgment, PipelineJob, PolicyResponse, Reference
from webapp.studio.selectors import run_judging_summary
from webapp.studio.services.pipeline import (
    job_claim,
    job_create,
    job_execute,
    policy_responses_generate,
)
from webapp.studio.token_usage import job_usage_totals

pytestmark = pytest.mark.django_db

# 1,000 per million prompt tokens and 2,000 per million completion tokens: a cost one can read.
PRICED = {"price_per_million_prompt_tokens": 1000.0, "price_per_million_completion_tokens": 2000.0}


def declare(monkeypatch: pytest.MonkeyPatch, **urls: str) -> None:
    monkeypatch.setenv(
        "WRITING_RL_ENDPOINTS",
        json.dumps([{"name": name, "base_url": url, **PRICED} for name, url in urls.items()]),
    )


def run_job(kind: str, dataset: Any, params: dict[str, Any]) -> PipelineJob:
    job = job_create(kind=kind, dataset=dataset, params=params, enqueue=False)
    lease = job_claim(job.pk, worker="me")
    assert lease is not None
    job_execute(job, lease)
    job.refresh_from_db()
    return job


def test_a_pipeline_job_stores_what_writing_and_grading_cost(
    monkeypatch: pytest.MonkeyPatch, staff_client: Client
) -> None:
    dataset = make_dataset()
    for n in range(2):
        make_instruction(dataset, prompt=f"Write a short poem about rivers {n}.")
    with (
        FakeOpenAIServer(latency_s=0.0) as server,
        FakeOpenAIServer(latency_s=0.0, policy=lambda call: Fault.SERVER_ERROR) as broken,
    ):
        declare(monkeypatch, fake=server.base_url, broken=broken.base_url)
        writers = [
            {"name": "gpt", "endpoint": "fake", "model": "m", "max_retries": 0},
            {"name": "down", "endpoint": "broken", "model": "m", "max_retries": 1},
        ]
        written = run_job("generate_references", dataset, {"writers": writers})
        graded = run_job(
            "score_references", dataset, {"scorer": {"endpoint": "fake", "model": "m"}}
        )
    references = list(Reference.objects.filter(instruction__dataset=dataset))
    assert len(references) == 2
    for reference in references:
        assert reference.attempts == 1
        assert reference.prompt_tokens >= 6 and reference.completion_tokens > 0
        assert reference.grade_attempts == 1
        assert reference.grade_prompt_tokens > reference.prompt_tokens  # the rubric is long
        assert reference.grade_completion_tokens > 0
    # The job's tally per endpoint; the failed generations were paid for too (2 requests each).
    assert written.usage["fake"] == {
        "calls": 2,
        "attempts": 2,
        "prompt_tokens": sum(r.prompt_tokens for r in references),
        "completion_tokens": sum(r.completion_tokens for r in references),
    }
    assert written.usage["broken"]["attempts"] == 4 and written.usage["broken"]["calls"] == 2
    assert graded.usage["fake"]["prompt_tokens"] == sum(r.grade_prompt_tokens for r in references)
    totals = job_usage_totals(graded)
    expected = (totals.prompt_tokens * 1000 + totals.completion_tokens * 2000) / 1_000_000
    assert totals.cost == pytest.approx(expected) and totals.cost > 0

    page = staff_client.get(reverse("studio:dataset_detail", args=[dataset.pk])).content.decode()
    assert f"{totals.tokens:,} tokens ({totals.prompt_tokens:,} prompt" in page
    assert "in 2 requests · cost " in page


def test_the_policys_graded_responses_store_what_their_grades_cost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dataset = make_dataset()
    make_instruction(dataset, prompt="Write 20 words about tea.")
    with FakeOpenAIServer(latency_s=0.0) as server:
        declare(monkeypatch, fake=server.base_url)
        job = job_create(kind="policy_responses", dataset=dataset, params={}, enqueue=False)
        policy_responses_generate(
            dataset=dataset, policy="tiny", max_new_tokens=4, model=tiny_model(seed=0),
            scorer={"endpoint": "fake", "model": "m"}, job_id=job.pk,
        )  # fmt: skip
    response = PolicyResponse.objects.get(instruction__dataset=dataset)
    assert response.score is not None and response.grade_attempts == 1
    assert response.grade_prompt_tokens > 0 and response.grade_completion_tokens > 0
    job.refresh_from_db()
    assert job.usage["fake"]["completion_tokens"] == response.grade_completion_tokens


def test_a_run_shows_its_judge_tokens_per_step_and_their_cost(
    monkeypatch: pytest.MonkeyPatch, staff_client: Client
) -> None:
    declare(monkeypatch, fake="http://judge.lab:8000/v1")
    dataset = make_dataset()
    instruction = make_instruction(dataset, references=2)
    run = make_run(dataset, config={"judge": {"endpoint": "fake", "model": "m"}})
    for step in (1, 2):
        Judgment.objects.create(run=run, instruction=instruction, step=step, rollout="r",
                                verdict="win", prompt_tokens=1500, completion_tokens=500,
                                attempts=2)  # fmt: skip
    summary = run_judging_summary(run)
    assert summary["tokens"] == 4000 and summary["tokens_per_step"] == 2000
    assert summary["cost"] == pytest.approx((3000 * 1000 + 1000 * 2000) / 1_000_000)
    assert summary["cost_per_step"] == pytest.approx(2.5)
    page = staff_client.get(reverse("studio:run_detail", args=[run.pk])).content.decode()
    assert "data-judge-cost>5.00</span>" in page and "2.50 per step" in page
    # Without a declared price there is no cost, not a zero one.
    monkeypatch.setenv(
        "WRITING_RL_ENDPOINTS", json.dumps([{"name": "fake", "base_url": "http://judge.lab/v1"}])
    )
    assert run_judging_summary(run)["cost"] is None


def test_a_campaigns_judge_votes_store_their_tokens_and_the_results_show_them(
    monkeypatch: pytest.MonkeyPatch, client: Client, researcher: User
) -> None:
    annotators = [User.objects.create_user(f"ann{i}") for i in range(2)]
    campaign = make_campaign(annotators, instructions=2, systems=2)
    with FakeOpenAIServer(latency_s=0.0) as server:
        declare(monkeypatch, fake=server.base_url)
        spec = {"endpoint": "fake", "model": "m", "max_retries": 0}
        judge_run = judge_run_create(campaign=campaign, spec=spec, enqueue=False)
        jobs.judge_run_execute(judge_run.pk, worker="me")
        requests = server.stats().requests
    votes = list(JudgeVote.objects.filter(judge_run=judge_run))
    assert votes and all(v.prompt_tokens > 20 and v.completion_tokens > 0 for v in votes)
    assert sum(v.attempts for v in votes) == requests
    client.force_login(researcher)
    page = client.get(reverse("annotation:results", args=[campaign.pk])).content.decode()
    prompt = sum(v.prompt_tokens for v in votes)
    assert f"All judge runs: {prompt + sum(v.completion_tokens for v in votes):,} tokens" in page
    assert f"in {requests} requests · cost " in page
