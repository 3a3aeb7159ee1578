"""The stale-run sweep: a run whose worker was lost is sent to a live worker again, once per
loss; a lost run that was asked to stop ends as cancelled."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.webapp.studio.factories import make_run
from webapp.studio.models import AuditLog, Run
from webapp.studio.services.leases import REQUEUE_AGAIN_AFTER, STALE_AFTER
from webapp.studio.services.runs import run_heartbeat, runs_recover_stale
from webapp.studio.tasks import train_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """The training tasks sent to the broker (recorded here instead of sent)."""
    calls: list[list[Any]] = []
    monkeypatch.setattr(
        train_run, "apply_async", lambda args, task_id=None: calls.append([*args, task_id])
    )
    return calls


def lost_run(**fields: object) -> Run:
    run = make_run(status=Run.Status.RUNNING, claimed_by="gpu-0@dead-host", **fields)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - 2 * STALE_AFTER)
    run.refresh_from_db()
    return run


def test_it_sends_a_lost_run_again_once_and_leaves_live_and_finished_runs_alone(
    sent: list[list[Any]], django_capture_on_commit_callbacks: Any
) -> None:
    lost = lost_run(task_id="task-of-lost")
    alive = make_run(status=Run.Status.RUNNING, heartbeat_at=timezone.now())
    queued = make_run()
    finished = make_run(status=Run.Status.SUCCEEDED, heartbeat_at=timezone.now() - STALE_AFTER * 3)
    assert lost.worker_lost and not alive.worker_lost and not finished.worker_lost

    with django_capture_on_commit_callbacks(execute=True):
        sweep = runs_recover_stale()
    assert (sweep.requeued, sweep.cancelled) == ([lost.pk], [])
    assert sent == [[lost.pk, "task-of-lost"]]  # the same task id: a revoke reaches every copy
    lost.refresh_from_db()
    assert lost.status == Run.Status.RUNNING and lost.requeued_at is not None
    entry = AuditLog.objects.get(action="run_requeue")
    assert entry.run_id == lost.pk and entry.details["claimed_by"] == "gpu-0@dead-host"
    for run in (alive, queued, finished):
        run.refresh_from_db()
        assert run.requeued_at is None

    # The next sweeps leave it alone: its message is already waiting for a worker.
    with django_capture_on_commit_callbacks(execute=True):
        assert runs_recover_stale().requeued == []
    assert len(sent) == 1


def test_a_run_taken_over_and_lost_again_is_sent_again(
    sent: list[list[Any]], django_capture_on_commit_callbacks: Any
) -> None:
    run = lost_run()
    with django_capture_on_commit_callbacks(execute=True):
        runs_recover_stale()
    # A worker takes it over (heartbeats after the requeue), then is lost too.
    Run.objects.filter(pk=run.pk).update(claimed_by="gpu-1@second-host")
    assert run_heartbeat(run.pk, worker="gpu-1@second-host")
    later = timezone.now() + 2 * STALE_AFTER
    with django_capture_on_commit_callbacks(execute=True):
        assert runs_recover_stale(now=later).requeued == [run.pk]
    assert len(sent) == 2


def test_a_lost_message_is_sent_again_after_an_hour(
    sent: list[list[Any]], django_capture_on_commit_callbacks: Any
) -> None:
    run = lost_run()
    with django_capture_on_commit_callbacks(execute=True):
        runs_recover_stale()
        assert runs_recover_stale(now=timezone.now() + REQUEUE_AGAIN_AFTER / 2).requeued == []
        later = timezone.now() + REQUEUE_AGAIN_AFTER + timedelta(seconds=1)
        assert runs_recover_stale(now=later).requeued == [run.pk]
    assert len(sent) == 2


def test_a_lost_run_that_was_asked_to_stop_ends_as_cancelled(
    sent: list[list[Any]], django_capture_on_commit_callbacks: Any
) -> None:
    run = lost_run(cancel_requested=True)
    with django_capture_on_commit_callbacks(execute=True):
        sweep = runs_recover_stale()
    assert (sweep.requeued, sweep.cancelled) == ([], [run.pk])
    assert sent == []
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED and run.finished_at is not None
    assert not run.worker_lost
    assert AuditLog.objects.filter(run=run, action="run_lost_cancelled").exists()


def test_the_run_page_says_when_the_worker_was_lost(admin_client: Any) -> None:
    run = lost_run()
    page = admin_client.get(reverse("studio:run_detail", args=[run.pk])).content.decode()
    assert "worker lost" in page.lower()
    Run.objects.filter(pk=run.pk).update(requeued_at=timezone.now())
    page = admin_client.get(reverse("studio:run_detail", args=[run.pk])).content.decode()
    assert "sent again" in page.lower()
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
    assert (
        "worker lost"
        not in admin_client.get(reverse("studio:run_detail", args=[run.pk]))
        .content.decode()
        .lower()
    )
