from __future__ import annotations

from django.test import Client

from tests.webapp.studio_views.factories import make_dataset, make_run
from webapp.studio.models import AuditLog, Run


def test_it_cancels_a_queued_run_at_once(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=0, status=Run.Status.QUEUED)
    response = staff_client.post(f"/studio/runs/{run.pk}/cancel/")
    assert response.status_code == 302 and response["Location"] == f"/studio/runs/{run.pk}/"
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED
    assert AuditLog.objects.filter(run=run, action="run_cancel").exists()


def test_it_asks_a_running_run_to_stop(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=2)
    staff_client.post(f"/studio/runs/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING and run.cancel_requested
    html = staff_client.get(f"/studio/runs/{run.pk}/").content.decode()
    assert "cancelling" in html


def test_it_leaves_a_finished_run_alone(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=2, status=Run.Status.SUCCEEDED)
    response = staff_client.post(f"/studio/runs/{run.pk}/cancel/", follow=True)
    assert "already ended (succeeded)" in response.content.decode()
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED and not run.cancel_requested


def test_it_refuses_get(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=1)
    assert staff_client.get(f"/studio/runs/{run.pk}/cancel/").status_code == 405


def test_an_ended_run_is_resumed_and_a_running_one_is_not(staff_client: Client) -> None:
    failed = make_run(make_dataset("f"), name="failed", status=Run.Status.FAILED)
    Run.objects.filter(pk=failed.pk).update(error="judge down", judge_wait={"step": 3})
    html = staff_client.get(f"/studio/runs/{failed.pk}/").content.decode()
    assert f'action="/studio/runs/{failed.pk}/resume/"' in html
    response = staff_client.post(f"/studio/runs/{failed.pk}/resume/")
    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.status, failed.error, failed.judge_wait, failed.finished_at) == (
        "queued",
        "",
        {},
        None,
    )
    entry = AuditLog.objects.get(run=failed, action="run_resume")
    assert entry.details["status_before"] == "failed" and entry.details["error_before"]
    running = make_run(make_dataset("r"), name="running")
    assert 'resume/"' not in staff_client.get(f"/studio/runs/{running.pk}/").content.decode()
    staff_client.post(f"/studio/runs/{running.pk}/resume/")
    running.refresh_from_db()
    assert running.status == "running"
    assert not AuditLog.objects.filter(run=running, action="run_resume").exists()
