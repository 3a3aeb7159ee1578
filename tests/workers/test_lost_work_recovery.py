"""Work whose worker was lost, and whose message nobody will re-deliver for hours: Celery beat's
sweep sends it again and a live worker resumes it — no manual step. A training run, and a
pipeline job that resumes where the lost worker stopped."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from django.utils import timezone

from rl_engine.models import save_tiny_model
from rl_engine.testing import ChatCall, FakeOpenAIServer
from tests.conftest import celery_worker
from tests.webapp.studio.factories import make_dataset, make_instruction
from tests.webapp.studio.test_runs import tiny_config
from webapp.studio.models import AuditLog, PipelineJob, Reference, Run, StepMetric
from webapp.studio.services.leases import STALE_AFTER
from webapp.studio.services.pipeline import job_create
from webapp.studio.services.runs import run_create

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_beat_hands_a_lost_run_to_a_live_worker_which_finishes_it(settings, tmp_path: Path) -> None:
    settings.WRITING_RL_RUNS_DIR = tmp_path / "runs"
    policy = save_tiny_model(tmp_path / "policy", seed=0)
    dataset = make_dataset()
    for _ in range(2):
        make_instruction(dataset, references=2)
    run = run_create(name="orphan", dataset=dataset, config=tiny_config(policy), enqueue=False)
    # As a worker leaves a run when its machine dies: claimed, running, heartbeat gone quiet,
    # and the task's message unacknowledged in a broker that will not re-deliver it for hours.
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.RUNNING,
        claimed_by="gpu-0@lost-host",
        attempts=1,
        started_at=timezone.now() - 3 * STALE_AFTER,
        heartbeat_at=timezone.now() - 2 * STALE_AFTER,
    )

    beat = ["-B", "--schedule", str(tmp_path / "beat-schedule")]
    with celery_worker(tmp_path, extra_args=beat, extra_env={"WRITING_RL_STALE_SWEEP_S": "1"}) as w:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.status != Run.Status.RUNNING:
                break
            assert w.process.poll() is None, w.log()
            time.sleep(0.3)
        log = w.log()
    assert run.status == Run.Status.SUCCEEDED, f"{run.status}: {run.error}\n{log[-4000:]}"
    assert "recover-lost-work" in log  # beat sent the sweep
    assert run.requeued_at is not None
    assert run.attempts == 2 and run.claimed_by != "gpu-0@lost-host"
    assert AuditLog.objects.filter(run=run, action="run_requeue").count() == 1
    assert list(StepMetric.objects.filter(run=run).values_list("step", flat=True)) == [1, 2]


def test_beat_hands_a_lost_pipeline_job_to_a_live_worker_which_resumes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = make_dataset()
    done, todo = (make_instruction(dataset, prompt=f"Write about fog, part {i}.") for i in (1, 2))
    prompts: list[str] = []

    def policy(call: ChatCall) -> str:
        prompts.append(call.user)
        return "Fog rolls in from the bay at dusk. " * 4

    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        monkeypatch.setenv(
            "WRITING_RL_ENDPOINTS", json.dumps([{"name": "fake", "base_url": server.base_url}])
        )
        writer = {"name": "gpt", "endpoint": "fake", "model": "m"}
        job = job_create(
            kind="generate_references", dataset=dataset, params={"writers": [writer]}, enqueue=False
        )
        # The lost worker had written the first reference, then its machine died.
        Reference.objects.create(
            instruction=done, writer="gpt", text="written before", metadata={"job": job.pk}
        )
        PipelineJob.objects.filter(pk=job.pk).update(
            status=PipelineJob.Status.RUNNING,
            claimed_by="judge-1@lost-host",
            attempts=1,
            progress=0.5,
            started_at=timezone.now() - 3 * STALE_AFTER,
            heartbeat_at=timezone.now() - 2 * STALE_AFTER,
        )
        beat = ["-B", "--schedule", str(tmp_path / "beat-schedule")]
        env = {"WRITING_RL_STALE_SWEEP_S": "1"}
        with celery_worker(tmp_path, extra_args=beat, extra_env=env) as worker:
            deadline = time.monotonic() + 120
            while PipelineJob.objects.get(pk=job.pk).status == PipelineJob.Status.RUNNING:
                assert time.monotonic() < deadline, worker.log()[-4000:]
                assert worker.process.poll() is None, worker.log()
                time.sleep(0.3)
    job.refresh_from_db()
    assert job.status == PipelineJob.Status.SUCCEEDED, job.error
    assert job.result == {"written": 1, "failed": 0, "errors": [], "resumed": 1}
    assert job.attempts == 2 and job.requeued_at is not None and job.progress == 1.0
    assert len(prompts) == 1 and "part 2" in prompts[0]  # only the missing reference
    written = Reference.objects.filter(metadata__job=job.pk)
    assert set(written.values_list("instruction_id", flat=True)) == {done.pk, todo.pk}
    assert AuditLog.objects.filter(action="job_requeue", details__job=job.pk).count() == 1
