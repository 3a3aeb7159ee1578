"""A failed job shows its error and a Retry button (pipeline jobs, evaluations, a campaign's
output generation, judge runs). Retry is POST only, for researchers; it queues the same row
again with a new lease epoch, sends its task once the transaction commits and writes an
audit entry; a row that has not failed is left alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import models
from django.test import Client
from django.urls import reverse

from tests.webapp.annotation.factories import make_campaign
from tests.webapp.studio.factories import make_dataset
from webapp.annotation.models import Campaign, JudgeRun
from webapp.evals.models import EvalRun
from webapp.studio.models import AuditLog, PipelineJob

pytestmark = pytest.mark.django_db

ERROR = "ValueError: the writer endpoint 'fake' answered 503"


def failed_job() -> PipelineJob:
    return PipelineJob.objects.create(
        kind="generate_references", dataset=make_dataset(), status="failed", error=ERROR, epoch=1
    )


def failed_eval() -> EvalRun:
    return EvalRun.objects.create(
        name="x", benchmark="writingbench", system_kind="base_model", status="failed",
        error=ERROR, epoch=2,
    )  # fmt: skip


def failed_campaign() -> Campaign:
    campaign = make_campaign([User.objects.create_user("a1")])
    Campaign.objects.filter(pk=campaign.pk).update(status="failed", error=ERROR, epoch=1)
    return Campaign.objects.get(pk=campaign.pk)


def failed_judge_run() -> JudgeRun:
    campaign = make_campaign([User.objects.create_user("a2")], name="judged")
    return JudgeRun.objects.create(
        campaign=campaign, judge_name="fake:m", spec={}, status="failed", error=ERROR, epoch=1
    )


# (make a failed row, its retry URL, the page showing it, the status it is queued in, audit)
KINDS: dict[str, tuple[Callable[[], Any], str, Callable[[Any], str], str, str]] = {
    "pipeline job": (
        failed_job, "studio:job_retry",
        lambda job: reverse("studio:dataset_detail", args=[job.dataset_id]), "queued", "job_retry",
    ),
    "evaluation": (
        failed_eval, "evals:retry", lambda e: reverse("evals:detail", args=[e.pk]), "queued",
        "eval_retry",
    ),
    "campaign": (
        failed_campaign, "annotation:campaign_retry",
        lambda c: reverse("annotation:campaign", args=[c.pk]), "generating", "campaign_retry",
    ),
    "judge run": (
        failed_judge_run, "annotation:judge_run_retry",
        lambda j: reverse("annotation:results", args=[j.campaign_id]), "queued",
        "judge_run_retry",
    ),
}  # fmt: skip


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The tasks sent (the broker is not this test's subject)."""
    calls: list[tuple[Any, ...]] = []

    def record(name: Any, args: Any = None, **_: Any) -> None:
        calls.append((str(name), *(args or [])))

    for module in (
        "webapp.studio.services.pipeline",
        "webapp.evals.services.jobs",
        "webapp.annotation.services.job_kinds",
    ):
        monkeypatch.setattr(f"{module}.send", record)
    return calls


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_failed_job_shows_its_error_and_retry_queues_the_same_row_again(
    kind: str,
    staff_client: Client,
    sent: list[tuple[Any, ...]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    make, url_name, page, waiting, action = KINDS[kind]
    row = make()
    url = reverse(url_name, args=[row.pk])
    html = staff_client.get(page(row)).content.decode()
    assert ERROR.replace("'", "&#x27;") in html
    assert f'action="{url}"' in html and ">Retry</button>" in html

    assert staff_client.get(url).status_code == 405  # POST only
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url)
    assert response.status_code == 302
    model: type[models.Model] = type(row)
    after = model.objects.get(pk=row.pk)
    assert (after.status, after.epoch, after.claimed_by, after.error) == (
        waiting,
        row.epoch + 1,
        "",
        "",
    )
    assert [call[1] for call in sent] == [row.pk]  # its task, sent once committed
    assert after.enqueued_at is not None
    audit = AuditLog.objects.get(action=action)
    assert audit.actor is not None and audit.actor.username == "res"
    assert audit.details["error_before"] == ERROR
    assert f'action="{url}"' not in staff_client.get(page(row)).content.decode()

    # A row that is not failed (here: already queued again) is left alone.
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(url)
    assert model.objects.get(pk=row.pk).epoch == row.epoch + 1
    assert len(sent) == 1 and AuditLog.objects.filter(action=action).count() == 1


@pytest.mark.parametrize("kind", list(KINDS))
def test_only_researchers_retry(kind: str, client: Client, annotator: User) -> None:
    make, url_name, _page, _waiting, action = KINDS[kind]
    row = make()
    url = reverse(url_name, args=[row.pk])
    assert client.post(url)["Location"].startswith("/login/")
    client.force_login(annotator)
    assert client.post(url).status_code == 403
    assert type(row).objects.get(pk=row.pk).status == "failed"
    assert not AuditLog.objects.filter(action=action).exists()
