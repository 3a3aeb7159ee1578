"""The kinds of background job of human evaluation (a campaign's output generation, an LLM
judge run) on the common lifecycle (``webapp.studio.services.leases``), and sending them. The
work itself is :mod:`.jobs`."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from webapp.annotation.models import Campaign, JudgeRun, JudgeVote
from webapp.studio.models import AuditLog
from webapp.studio.services.leases import JobKind, enqueue_on_commit, lease_retry
from workers.dispatch import send
from workers.queues import QueueName, TaskName


def _sender(task: TaskName, queue: QueueName) -> Any:
    """Send ``task`` for a row (its pk, its task id) on ``queue``."""

    def send_row(row: Campaign | JudgeRun) -> None:
        send(task, args=[row.pk], task_id=row.task_id or None, queue=queue.value,
             routing_key=queue.value)  # fmt: skip

    return send_row


def _audit(prefix: str) -> Any:
    def audit(row: Any, action: str, details: dict[str, Any]) -> None:
        AuditLog.objects.create(action=f"{prefix}_{action}", details={**details, prefix: row.pk})

    return audit


CAMPAIGN_KIND = JobKind(
    name="campaign",
    model=Campaign,
    waiting=(),  # a generating campaign nobody holds is waiting
    running=(Campaign.Status.GENERATING,),
    cancelled=None,
    send=_sender(TaskName.GENERATE_CAMPAIGN_OUTPUTS, QueueName.GPU),
    audit=_audit("campaign"),
)
JUDGE_RUN_KIND = JobKind(
    name="judge_run",
    model=JudgeRun,
    waiting=(JudgeRun.Status.QUEUED,),
    running=(JudgeRun.Status.RUNNING,),
    cancelled=None,
    send=_sender(TaskName.JUDGE_CAMPAIGN, QueueName.JUDGE),
    audit=_audit("judge_run"),
)
JOB_KINDS = (CAMPAIGN_KIND, JUDGE_RUN_KIND)


def campaign_enqueue(campaign: Campaign) -> None:
    """Send the campaign's generation task once the transaction commits."""
    enqueue_on_commit(CAMPAIGN_KIND, campaign)


def judge_run_enqueue(judge_run: JudgeRun) -> None:
    """Send the judge run's task once the transaction commits."""
    enqueue_on_commit(JUDGE_RUN_KIND, judge_run)


def _actor(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


@transaction.atomic
def campaign_retry(*, campaign: Campaign, user: Any = None) -> bool:
    """Queue a campaign whose output generation failed again (the same row, a new lease
    epoch): the outputs it stored are kept and only the missing ones are generated. Audited
    as ``campaign_retry``; False when its generation had not failed."""
    before = Campaign.objects.filter(pk=campaign.pk).values("error", "epoch").first()
    retried = lease_retry(
        CAMPAIGN_KIND, campaign.pk, failed=(Campaign.Status.FAILED,),
        to=Campaign.Status.GENERATING, error="",
    )  # fmt: skip
    if retried and before is not None:
        AuditLog.objects.create(
            actor=_actor(user), action="campaign_retry",
            details={"campaign": campaign.pk, "epoch_before": before["epoch"],
                     "error_before": before["error"][-1000:]},
        )  # fmt: skip
    return retried


@transaction.atomic
def judge_run_retry(*, judge_run: JudgeRun, user: Any = None) -> bool:
    """Queue a failed judge run again (the same row, a new lease epoch): the votes it stored
    are kept and only the items without votes are judged — an item one of whose votes carries
    a call error loses its votes and is judged again. Audited as ``judge_run_retry``; False
    when it had not failed."""
    before = JudgeRun.objects.filter(pk=judge_run.pk).values("error", "epoch").first()
    retried = lease_retry(
        JUDGE_RUN_KIND, judge_run.pk, failed=(JudgeRun.Status.FAILED,),
        to=JudgeRun.Status.QUEUED, error="", finished_at=None,
    )  # fmt: skip
    if not retried or before is None:
        return False
    errored = JudgeVote.objects.filter(judge_run=judge_run).exclude(error="")
    items = list(errored.values_list("item_id", flat=True).distinct())
    JudgeVote.objects.filter(judge_run=judge_run, item_id__in=items).delete()
    AuditLog.objects.create(
        actor=_actor(user), action="judge_run_retry",
        details={"judge_run": judge_run.pk, "campaign": judge_run.campaign_id,
                 "epoch_before": before["epoch"], "error_before": before["error"][-1000:],
                 "judged_again": len(items)},
    )  # fmt: skip
    return True
