"""The annotation tasks through a real Celery worker process (serialization, queues, commits)."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User

from tests.conftest import WorkerProcess
from tests.webapp.annotation.factories import cast, make_campaign
from webapp.annotation import results
from webapp.annotation.models import JudgeRun, JudgeVote
from webapp.annotation.services.judge_runs import judge_run_create

pytestmark = pytest.mark.services


def test_it_runs_the_judge_on_a_real_worker(celery_worker_process: WorkerProcess) -> None:
    users = [User.objects.create_user(f"worker-ann{i}") for i in range(2)]
    campaign = make_campaign(users, instructions=2, systems=2, overlap=2, name="worker")
    for item in campaign.items.all():
        cast(users[0], item, "a")
        cast(users[1], item, "b", a_on_left=False)
    # Queued on commit (this test runs outside a transaction), on the judge queue.
    judge_run = judge_run_create(campaign=campaign, spec={"kind": "heuristic"})
    deadline = time.monotonic() + 60
    while JudgeRun.objects.get(pk=judge_run.pk).status not in ("succeeded", "failed"):
        if time.monotonic() > deadline:
            pytest.fail(f"the judge run did not finish in 60 s:\n{celery_worker_process.log()}")
        time.sleep(0.2)
    judge_run.refresh_from_db()
    assert judge_run.status == "succeeded", judge_run.error
    assert judge_run.task_id
    assert JudgeVote.objects.filter(judge_run=judge_run).count() == 4
    (row,) = results.judge_agreement(campaign)
    assert row.items == 2 and row.position_flip_rate == 0.0
