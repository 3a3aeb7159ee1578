"""A pipeline job that did less than asked says so: "partial" or "failed", the counts and the
first error, never "succeeded · 100%"."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rl_engine.testing import ChatCall, FakeOpenAIServer
from tests.webapp.studio.factories import make_dataset, make_instruction
from webapp.studio.models import Reference
from webapp.studio.services.job_outcome import job_outcome
from webapp.studio.services.pipeline import job_create
from webapp.studio.tasks import run_pipeline_job


def test_the_outcome_follows_the_counts() -> None:
    assert job_outcome("score_references", {"scored": 6, "failed": 0}).status == "succeeded"
    none = job_outcome("score_references", {"scored": 0, "failed": 6, "errors": ["r1: empty"]})
    assert (none.status, none.progress) == ("failed", 0.0)
    assert none.message == "scored 0/6, 6 failed; first error: r1: empty" == none.error
    some = job_outcome("generate_references", {"written": 3, "failed": 1, "errors": ["w: 500"]})
    assert (some.status, some.progress, some.error) == ("partial", 0.75, "")
    assert some.message == "written 3/4, 1 failed; first error: w: 500"
    assert job_outcome("score_references", {"scored": 0, "failed": 0}).status == "failed"
    assert job_outcome("score_references", {"scored": 0, "failed": 0, "resumed": 4}).status == (
        "succeeded"
    )


def test_ordering_and_selection_say_what_they_did() -> None:
    done = job_outcome("order_tiers", {"instructions": 3, "tiered": 6, "untiered": 0})
    assert (done.status, done.message) == ("succeeded", "tiered 6/6 references of 3 instructions")
    some = job_outcome("order_tiers", {"instructions": 3, "tiered": 4, "untiered": 2})
    assert (some.status, some.progress) == ("partial", 4 / 6)
    assert some.message == "tiered 4/6 references of 3 instructions, 2 unscored left untiered"
    none = job_outcome("order_tiers", {"instructions": 3, "tiered": 0, "untiered": 6})
    assert (none.status, none.error) == ("failed", none.message)
    assert job_outcome("order_tiers", {"instructions": 0, "tiered": 0}).message == (
        "nothing to order: no reference"
    )
    chose = job_outcome("select", {"selection": 1, "chosen": 4, "candidates": 9, "k": 4})
    assert (chose.status, chose.message) == ("succeeded", "chose 4 of 9 instructions")
    short = job_outcome("select", {"selection": 1, "chosen": 3, "candidates": 3, "k": 5})
    assert (short.status, short.progress) == ("partial", 0.6)
    assert short.message == "chose 3 of k=5 asked: only 3 candidate instructions"
    refused = job_outcome("select", {"selection": None, "chosen": 0, "error": "unscored"})
    assert (refused.status, refused.message) == ("failed", "selected nothing: unscored")
    answers = job_outcome(
        "policy_responses", {"responses": 6, "graded": 0, "failed": 6, "errors": ["i1: 500"]}
    )
    assert answers.status == "failed"
    assert answers.message == "answers graded 0/6, 6 failed; first error: i1: 500"


def grades(good: str) -> Any:
    """A grader that answers in JSON only for texts containing ``good``."""

    def policy(call: ChatCall) -> str:
        text = " ".join(str(m.get("content", "")) for m in call.messages)
        return '{"score": 7, "reason": "fine"}' if good in text else "I would rather not say."

    return policy


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("good", "status", "message", "progress"),
    [
        ("nothing-matches", "failed", "scored 0/2, 2 failed; first error: reference", 0.0),
        ("Green tea", "partial", "scored 1/2, 1 failed; first error: reference", 0.5),
        ("tea", "succeeded", "scored 2/2", 1.0),
    ],
)
def test_a_grading_job_reports_what_it_did(
    good: str, status: str, message: str, progress: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = make_dataset()
    instruction = make_instruction(dataset, prompt="Write 12 words about a drink.")
    for writer, text in [("loop", "tea " * 30), ("fine", "Green tea in the morning wakes me.")]:
        Reference.objects.create(instruction=instruction, writer=writer, text=text)
    with FakeOpenAIServer(latency_s=0.0, policy=grades(good)) as server:
        # The deployment declares the grader's endpoint; the job names it.
        monkeypatch.setenv(
            "WRITING_RL_ENDPOINTS", json.dumps([{"name": "grader", "base_url": server.base_url}])
        )
        scorer = {"endpoint": "grader", "model": "m", "max_retries": 0, "max_reasks": 0,
                  "hedge": False}  # fmt: skip
        job = job_create(kind="score_references", dataset=dataset, params={"scorer": scorer})
        run_pipeline_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == status
    assert job.message.startswith(message)
    assert job.progress == progress
    assert job.error == (job.message if status == "failed" else "")
    assert job.result["failed"] == 2 - job.result["scored"]
