"""A run whose worker was lost, and whose message nobody will re-deliver for hours: Celery beat's
sweep sends it again and a live worker resumes it — no manual step."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.utils import timezone

from rl_engine.models import save_tiny_model
from tests.conftest import celery_worker
from tests.webapp.studio.factories import make_dataset, make_instruction
from tests.webapp.studio.test_runs import tiny_config
from webapp.studio.models import AuditLog, Run, StepMetric
from webapp.studio.services.runs import STALE_AFTER, run_create

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
    assert "recover-stale-runs" in log  # beat sent the sweep
    assert run.requeued_at is not None
    assert run.attempts == 2 and run.claimed_by != "gpu-0@lost-host"
    assert AuditLog.objects.filter(run=run, action="run_requeue").count() == 1
    assert list(StepMetric.objects.filter(run=run).values_list("step", flat=True)) == [1, 2]
