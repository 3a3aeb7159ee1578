"""Faults on a pipeline job (reference writing through an OpenAI-compatible server), with real
worker processes: a worker killed mid-work, and a worker stopped past the stale time, taken
over and then continued. Either way the job finishes once, with exactly the references an
uninterrupted job writes."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from rl_engine.testing import ChatCall, FakeOpenAIServer
from tests.faults.harness import require_services, wait_for, worker
from tests.webapp.studio.factories import make_dataset, make_instruction
from webapp.studio.models import AuditLog, PipelineJob, Reference
from webapp.studio.services.pipeline import job_create

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

INSTRUCTIONS = 16  # two batches of eight


def text_for(number: str) -> str:
    return f"Harbour {number} at dawn, gulls over the cranes. " * 3


def answer(call: ChatCall) -> str:
    """The server's answer depends on the instruction only: an uninterrupted job's texts."""
    match = re.search(r"harbour (\d+)", call.user)
    return text_for(match.group(1) if match else "?")


def declare(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer) -> None:
    """The deployment declares the writer's endpoint; set before a worker starts (it
    inherits the environment)."""
    monkeypatch.setenv(
        "WRITING_RL_ENDPOINTS", json.dumps([{"name": "fake", "base_url": server.base_url}])
    )


def setup_job(server: FakeOpenAIServer) -> tuple[PipelineJob, dict[int, str]]:
    dataset = make_dataset()
    instructions = [
        make_instruction(dataset, prompt=f"Write about harbour {i}.") for i in range(INSTRUCTIONS)
    ]
    writer = {"name": "gpt", "endpoint": "fake", "model": "m"}
    job = job_create(kind="generate_references", dataset=dataset, params={"writers": [writer]})
    return job, {i.pk: str(n) for n, i in enumerate(instructions)}


def written(job: PipelineJob) -> list[tuple[int, str]]:
    return sorted(
        Reference.objects.filter(metadata__job=job.pk).values_list("instruction_id", "text")
    )


def assert_like_uninterrupted(job: PipelineJob, prompts: dict[int, str]) -> None:
    job.refresh_from_db()
    assert job.status == PipelineJob.Status.SUCCEEDED, job.error
    assert job.attempts == 2 and job.epoch == 2
    assert job.result["written"] + job.result.get("resumed", 0) == INSTRUCTIONS
    # One reference per instruction, the text an uninterrupted job writes: nothing twice.
    assert written(job) == sorted((pk, text_for(number)) for pk, number in prompts.items())


def test_a_job_whose_worker_is_killed_is_resumed_and_finished_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_services()
    with FakeOpenAIServer(latency_s=0.4, policy=answer) as server:
        declare(monkeypatch, server)
        with worker(tmp_path, "doomed") as doomed:
            job, prompts = setup_job(server)
            wait_for(lambda: len(written(job)) >= 8, "the first batch", alive=(doomed,))
            os.kill(doomed.process.pid, signal.SIGKILL)
            doomed.process.wait(timeout=10)
        assert PipelineJob.objects.get(pk=job.pk).status == PipelineJob.Status.RUNNING
        with worker(tmp_path, "rescuer", beat=True) as rescuer:
            wait_for(
                lambda: PipelineJob.objects.get(pk=job.pk).status != "running",
                "the job to finish",
                alive=(rescuer,),
            )
    assert_like_uninterrupted(job, prompts)
    assert AuditLog.objects.filter(action="job_requeue", details__job=job.pk).count() == 1


def test_a_stopped_worker_taken_over_writes_nothing_when_it_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_services()
    with FakeOpenAIServer(latency_s=1.0, policy=answer) as server:
        declare(monkeypatch, server)
        with worker(tmp_path, "sleeper") as sleeper:
            job, prompts = setup_job(server)
            # Stop it as soon as its first batch is stored: the second is in flight.
            wait_for(lambda: len(written(job)) >= 8, "the first batch", alive=(sleeper,))
            os.kill(sleeper.process.pid, signal.SIGSTOP)
            with worker(tmp_path, "rescuer", beat=True) as rescuer:
                wait_for(
                    lambda: PipelineJob.objects.get(pk=job.pk).status != "running",
                    "the takeover to finish the job",
                    alive=(rescuer,),
                )
                job.refresh_from_db()
                finished = (job.finished_at, job.result, job.progress, job.message)
                os.kill(sleeper.process.pid, signal.SIGCONT)
                # The old holder wakes with its second batch answered, and must store nothing.
                wait_for(lambda: "no longer held" in sleeper.log(), "the old worker", timeout=60)
                time.sleep(2)
            log = sleeper.log()
    assert_like_uninterrupted(job, prompts)
    assert (job.finished_at, job.result, job.progress, job.message) == finished
    assert "no longer held" in log, log[-3000:]
