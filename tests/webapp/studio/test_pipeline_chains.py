"""Chained pipeline jobs: a job waits for its inputs, runs once they succeeded (or ended
partial), ends failed/cancelled naming the input that did, and "prepare references" chains
write → grade → order tiers (→ select) on the first N instructions. The jobs run here through
``job_run`` (what the worker task does), sends are recorded instead of reaching the broker."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from rl_engine.testing import ChatCall, FakeOpenAIServer, Fault
from tests.webapp.studio.factories import make_dataset, make_instruction
from webapp.studio.models import Dataset, Instruction, PipelineJob, Reference
from webapp.studio.services.pipeline import (
    dependents_release,
    job_cancel,
    job_create,
    job_retry,
    job_retry_blocked,
    job_run,
)
from webapp.studio.services.prepare import PrepareError, references_prepare
from webapp.studio.tasks import run_pipeline_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The job ids whose task was sent (recorded here instead of the broker)."""
    calls: list[int] = []
    monkeypatch.setattr(run_pipeline_job, "apply_async", lambda **kw: calls.append(kw["args"][0]))
    return calls


def writes(call: ChatCall) -> str | Fault:
    """A writer that fails on instructions mentioning "storm" and writes otherwise."""
    if "storm" in call.user:
        return Fault.SERVER_ERROR
    topic = re.search(r"about (\w+)", call.user)
    return f"The {topic.group(1) if topic else 'sea'} at dawn, quiet and grey. " * 4


@pytest.fixture
def writer(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with FakeOpenAIServer(latency_s=0.0, policy=writes) as server:
        monkeypatch.setenv(
            "WRITING_RL_ENDPOINTS", json.dumps([{"name": "fake", "base_url": server.base_url}])
        )
        yield {"name": "gpt", "endpoint": "fake", "model": "m", "max_retries": 0}


def run(job: PipelineJob, capture: Any) -> PipelineJob:
    """Run ``job`` as its task does; what its finish does on commit (moving the jobs that wait
    for it, sending them) runs too."""
    with capture(execute=True):
        job_run(job.pk, worker="worker-1")
    job.refresh_from_db()
    return job


def fresh(*jobs: PipelineJob) -> list[PipelineJob]:
    for job in jobs:
        job.refresh_from_db()
    return list(jobs)


def dataset_of(*topics: str, split: str = "train") -> tuple[Dataset, list[Instruction]]:
    dataset = make_dataset()
    return dataset, [
        make_instruction(dataset, prompt=f"Write about {t}.", split=split) for t in topics
    ]


def test_a_chain_runs_in_order_each_step_sent_when_its_input_succeeded(
    writer: dict[str, Any], sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    dataset, _instructions = dataset_of("harbours", "gulls", "cranes")
    with django_capture_on_commit_callbacks(execute=True):
        write, grade, order, select = references_prepare(
            dataset=dataset, writer=writer, strategy="random", k=1
        )
    assert [j.status for j in (write, grade, order, select)] == [
        "queued", "waiting", "waiting", "waiting",
    ]  # fmt: skip
    assert grade.message == f"waiting for job #{write.pk} (generate references)"
    assert sent == [write.pk]  # only the first step is sent
    assert len({j.group for j in (write, grade, order, select)}) == 1
    assert write.group_label.startswith("Prepare references: all 3 instruction(s)")

    assert run(write, django_capture_on_commit_callbacks).status == "succeeded"
    assert sent == [write.pk, grade.pk]
    grade, order = fresh(grade, order)
    assert (grade.status, order.status) == ("queued", "waiting")
    assert order.message == f"waiting for job #{grade.pk} (score references)"

    assert run(grade, django_capture_on_commit_callbacks).message == "scored 3/3"
    assert run(order, django_capture_on_commit_callbacks).message == (
        "tiered 3/3 references of 3 instructions"
    )
    select = run(select, django_capture_on_commit_callbacks)
    assert (select.status, select.message) == ("succeeded", "chose 1 of 3 instructions")
    assert sent == [write.pk, grade.pk, order.pk, select.pk]  # each once
    assert Reference.objects.filter(tier=0).count() == 3


def test_a_failed_input_fails_every_job_after_it_naming_it(
    writer: dict[str, Any], sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    dataset, _ = dataset_of("storms", "storm surges")
    with django_capture_on_commit_callbacks(execute=True):
        write, grade, order = references_prepare(dataset=dataset, writer=writer)
    write = run(write, django_capture_on_commit_callbacks)
    assert write.status == "failed"
    assert write.message.startswith("written 0/2, 2 failed; first error: gpt:")
    grade, order = fresh(grade, order)
    assert grade.status == order.status == "failed"
    assert grade.message.startswith(
        f"not run: job #{write.pk} (generate references) failed: written 0/2, 2 failed"
    )
    assert order.message.startswith(
        f"not run: job #{grade.pk} (score references) did not run: job #{write.pk} "
        "(generate references) failed"
    )
    assert grade.error == grade.message and grade.finished_at is not None
    assert sent == [write.pk]  # neither dependent was ever sent


def test_a_cancelled_input_cancels_the_jobs_waiting_for_it(
    writer: dict[str, Any], sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    dataset, _ = dataset_of("harbours")
    with django_capture_on_commit_callbacks(execute=True):
        write, grade, order = references_prepare(dataset=dataset, writer=writer)
    with django_capture_on_commit_callbacks(execute=True):
        job_cancel(job=write)
    write, grade, order = fresh(write, grade, order)
    assert [j.status for j in (write, grade, order)] == ["cancelled"] * 3
    assert grade.message == f"not run: job #{write.pk} (generate references) was cancelled"
    assert order.message.startswith(f"not run: job #{grade.pk} (score references) did not run")
    # A message that was already sent for the cancelled job does nothing.
    assert job_run(write.pk, worker="late") == {"job": write.pk, "claimed": False}
    assert sent == [write.pk]


def test_cancelling_a_waiting_job_cancels_only_it_and_what_waits_for_it(
    writer: dict[str, Any], sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    dataset, _ = dataset_of("harbours")
    with django_capture_on_commit_callbacks(execute=True):
        write, grade, order = references_prepare(dataset=dataset, writer=writer)
        job_cancel(job=grade)
    write, grade, order = fresh(write, grade, order)
    assert (write.status, grade.status, order.status) == ("queued", "cancelled", "cancelled")
    assert run(write, django_capture_on_commit_callbacks).status == "succeeded"
    assert sent == [write.pk]


def test_a_partial_input_lets_the_next_step_work_on_what_it_made(
    writer: dict[str, Any], sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    dataset, (calm, _stormy) = dataset_of("harbours", "storms")
    with django_capture_on_commit_callbacks(execute=True):
        write, grade, order = references_prepare(dataset=dataset, writer=writer)
    write = run(write, django_capture_on_commit_callbacks)
    assert write.status == "partial" and write.message.startswith("written 1/2, 1 failed")
    grade = fresh(grade)[0]
    assert grade.status == "queued" and sent == [write.pk, grade.pk]
    assert grade.message == (
        f"inputs partial (job #{write.pk} (generate references)): works on what they made"
    )
    assert run(grade, django_capture_on_commit_callbacks).message == "scored 1/1"
    order = run(order, django_capture_on_commit_callbacks)
    assert (order.status, order.message) == ("succeeded", "tiered 1/1 references of 1 instructions")
    assert list(Reference.objects.values_list("instruction", "tier")) == [(calm.pk, 0)]


def test_the_first_n_limit_holds_through_every_step(
    writer: dict[str, Any], sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    dataset = make_dataset()
    topics = ["a0", "b1", "c2", "d3", "e4"]
    splits = ["test", "train", "train", "test", "train"]
    rows = [
        make_instruction(dataset, prompt=f"Write about {t}.", split=s)
        for t, s in zip(topics, splits, strict=True)
    ]
    # An unscored, untiered reference outside the first two train instructions: left alone.
    outside = Reference.objects.create(instruction=rows[4], writer="old", text="An old text.")
    with django_capture_on_commit_callbacks(execute=True):
        jobs = references_prepare(dataset=dataset, writer=writer, split="train", limit=2)
    assert jobs[0].group_label == "Prepare references: first 2 train instruction(s)"
    for job in jobs:
        assert job.params["instruction_ids"] == [rows[1].pk, rows[2].pk]
        assert run(fresh(job)[0], django_capture_on_commit_callbacks).status == "succeeded"
    written = Reference.objects.filter(writer="gpt")
    assert sorted(written.values_list("instruction_id", flat=True)) == [rows[1].pk, rows[2].pk]
    assert all(r.score is not None and r.tier == 0 for r in written)
    outside.refresh_from_db()
    assert (outside.score, outside.tier) == (None, None)


def test_a_step_that_finds_nothing_to_do_fails_saying_so(
    sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    dataset, (instruction,) = dataset_of("harbours")
    Reference.objects.create(instruction=instruction, writer="w", text="Text.")  # unscored
    with django_capture_on_commit_callbacks(execute=True):
        order = job_create(kind="order_tiers", dataset=dataset, params={})
        select = job_create(
            kind="select", dataset=dataset, params={"strategy": "margin", "policy": "pi"}
        )
        empty = job_create(kind="score_references", dataset=make_dataset(), params={})
    order = run(order, django_capture_on_commit_callbacks)
    assert (order.status, order.progress) == ("failed", 0.0)
    assert order.message == "tiered 0/1 references: none is scored (grade them first)"
    select = run(select, django_capture_on_commit_callbacks)
    assert select.status == "failed"
    assert select.message.startswith("selected nothing: 1 instruction(s) lack the scores")
    assert "Traceback" not in select.error
    empty = run(empty, django_capture_on_commit_callbacks)
    assert (empty.status, empty.message) == ("failed", "nothing to grade: no unscored reference")


def test_a_job_whose_input_already_ended_is_released_or_failed_at_creation(
    sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    dataset = make_dataset()
    done = PipelineJob.objects.create(kind="score_references", dataset=dataset, status="partial")
    broken = PipelineJob.objects.create(
        kind="score_references", dataset=dataset, status="failed", message="scored 0/3, 3 failed"
    )
    with django_capture_on_commit_callbacks(execute=True):
        after_done = job_create(kind="order_tiers", dataset=dataset, params={}, depends_on=[done])
        after_broken = job_create(
            kind="order_tiers", dataset=dataset, params={}, depends_on=[done, broken]
        )
    assert after_done.status == "queued" and sent == [after_done.pk]
    assert after_broken.status == "failed"
    assert after_broken.message == (
        f"not run: job #{broken.pk} (score references) failed: scored 0/3, 3 failed"
    )
    with pytest.raises(ValueError, match="its own dataset"):
        job_create(kind="order_tiers", dataset=make_dataset(), params={}, depends_on=[done])


def test_a_job_failed_by_its_input_is_retried_only_once_the_input_is_no_longer_failed(
    sent: list[int], django_capture_on_commit_callbacks: Any, client: Any
) -> None:
    from django.contrib.auth.models import User

    dataset = make_dataset()
    broken = PipelineJob.objects.create(
        kind="score_references", dataset=dataset, status="failed", message="scored 0/3, 3 failed"
    )
    with django_capture_on_commit_callbacks(execute=True):
        after = job_create(kind="order_tiers", dataset=dataset, params={}, depends_on=[broken])
    assert after.status == "failed"
    assert job_retry_blocked(after) == (
        f"job #{after.pk} needs job #{broken.pk} (score_references), which failed: "
        f"retry job #{broken.pk} first"
    )
    assert job_retry(job=after) is False
    client.force_login(User.objects.create_superuser("lead", password="pw-lead-123456"))
    page = client.post(f"/studio/jobs/{after.pk}/retry/", follow=True).content.decode()
    assert f"Not retried: job #{after.pk} needs job #{broken.pk}" in page
    after.refresh_from_db()
    assert after.status == "failed" and sent == []
    # Once the input is retried and succeeds, the dependent can be retried.
    PipelineJob.objects.filter(pk=broken.pk).update(status="succeeded")
    with django_capture_on_commit_callbacks(execute=True):
        assert job_retry(job=after) is True
    after.refresh_from_db()
    assert after.status == "queued" and sent == [after.pk]


def test_the_sweep_sends_a_waiting_job_whose_input_ended_but_was_never_released(
    writer: dict[str, Any], sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    from webapp.ops.recovery import lost_work_recover

    dataset, _ = dataset_of("harbours")
    with django_capture_on_commit_callbacks(execute=True):
        write, grade, _order = references_prepare(dataset=dataset, writer=writer)
    # The worker finishes the input and is lost before its commit hook moved the next step.
    with django_capture_on_commit_callbacks(execute=False):
        job_run(write.pk, worker="worker-1")
    write, grade = fresh(write, grade)
    assert (write.status, grade.status) == ("succeeded", "waiting")
    with django_capture_on_commit_callbacks(execute=True):
        report = lost_work_recover()
    assert report["waiting pipeline job"]["queued"] == [grade.pk]
    assert fresh(grade)[0].status == "queued" and sent == [write.pk, grade.pk]
    # A second pass (or a late commit hook) moves nothing twice.
    with django_capture_on_commit_callbacks(execute=True):
        assert dependents_release(of=write.pk)["queued"] == []
    assert sent == [write.pk, grade.pk]


def test_prepare_refuses_bad_input_and_creates_nothing(writer: dict[str, Any]) -> None:
    dataset, _ = dataset_of("harbours", split="test")
    for kwargs, message in [
        ({"limit": 0}, "at least 1"),
        ({"split": "train"}, "no instructions in the train split"),
        ({"strategy": "margin", "split": "test"}, "choose the train split"),
        ({"strategy": "margin"}, "needs the policy"),
        ({"strategy": "random"}, "none among those chosen"),
        ({"strategy": "best"}, "strategy must be one of"),
    ]:
        with pytest.raises(PrepareError, match=message):
            references_prepare(dataset=dataset, writer=writer, **kwargs)
    assert not PipelineJob.objects.exists()
