"""Judge runs and campaign generation on the job lifecycle: a resumed judge run pays only
for the items without votes; a judge run taken over stores nothing; a generating campaign
whose message was lost is sent again by the sweep."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from tests.webapp.annotation.factories import make_campaign
from webapp.annotation.models import Campaign, JudgeRun, JudgeVote
from webapp.annotation.services import jobs
from webapp.annotation.services.judge_runs import judge_run_create
from webapp.studio.models import AuditLog
from webapp.studio.services.leases import STALE_AFTER, LeaseLost, lease_claim, sweep_kind

pytestmark = pytest.mark.django_db


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of pairs each judge call was asked about."""
    import rl_engine.judging as judging

    calls: list[int] = []
    real = judging.make_judge

    def make(spec: Any) -> Any:
        judge = real(spec)
        compare = judge.compare_sync

        def counting(requests: Any) -> Any:
            calls.append(len(requests))
            return compare(requests)

        judge.compare_sync = counting
        return judge

    monkeypatch.setattr(judging, "make_judge", make)
    return calls


def campaign() -> Campaign:
    annotators = [User.objects.create_user(f"ann{i}") for i in range(2)]
    return make_campaign(annotators, instructions=4, systems=3)  # 12 items


def test_a_resumed_judge_run_judges_only_the_items_without_votes(counted: list[int]) -> None:
    voted = campaign()
    judge_run = judge_run_create(campaign=voted, spec={"kind": "heuristic"}, enqueue=False)
    lost = lease_claim(JudgeRun, judge_run.pk, worker="lost", cancelled=None)
    assert lost is not None
    first = list(voted.items.order_by("position")[:5])
    with lost.fenced():  # the lost worker had stored its first votes
        for item in first:
            for order in ("ab", "ba"):
                JudgeVote.objects.create(
                    judge_run=judge_run, item=item, order=order, verdict="A", outcome="a"
                )
    JudgeRun.objects.filter(pk=judge_run.pk).update(heartbeat_at=timezone.now() - 2 * STALE_AFTER)
    result = jobs.judge_run_execute(judge_run.pk, worker="rescuer")
    assert result["judgments"] == 14 and sum(counted) == 14  # 7 items, both orders
    judge_run.refresh_from_db()
    assert judge_run.status == JudgeRun.Status.SUCCEEDED and judge_run.epoch == 2
    assert JudgeVote.objects.filter(judge_run=judge_run).count() == 24
    with pytest.raises(LeaseLost), lost.fenced():
        pytest.fail("the lost worker must not write")  # pragma: no cover


def test_a_judge_run_found_running_elsewhere_is_left_alone(counted: list[int]) -> None:
    voted = campaign()
    judge_run = judge_run_create(campaign=voted, spec={"kind": "heuristic"}, enqueue=False)
    assert lease_claim(JudgeRun, judge_run.pk, worker="alive", cancelled=None) is not None
    assert jobs.judge_run_execute(judge_run.pk, worker="duplicate") == {
        "judge_run": judge_run.pk, "claimed": False
    }  # fmt: skip
    assert counted == [] and not JudgeVote.objects.exists()


def test_the_sweep_sends_a_generating_campaign_whose_send_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from webapp.annotation.tasks import generate_campaign_outputs

    sent: list[int] = []
    monkeypatch.setattr(
        generate_campaign_outputs, "apply_async", lambda args, **_: sent.append(args[0])
    )
    voted = campaign()
    Campaign.objects.filter(pk=voted.pk).update(status=Campaign.Status.GENERATING)
    later = timezone.now() + timedelta(minutes=1)
    assert sweep_kind(jobs.CAMPAIGN_KIND, now=later).resent == [voted.pk]
    assert sent == [voted.pk]
    assert AuditLog.objects.filter(action="campaign_resend").count() == 1
