"""The kinds of background job of human evaluation (a campaign's output generation, an LLM
judge run) on the common lifecycle (``webapp.studio.services.leases``), and sending them. The
work itself is :mod:`.jobs`."""

from __future__ import annotations

from typing import Any

from webapp.annotation.models import Campaign, JudgeRun
from webapp.studio.models import AuditLog
from webapp.studio.services.leases import JobKind, enqueue_on_commit
from workers.dispatch import send
from workers.queues import QueueName, TaskName


def _send_generation(campaign: Campaign) -> None:
    queue = QueueName.GPU.value
    send(
        TaskName.GENERATE_CAMPAIGN_OUTPUTS,
        args=[campaign.pk],
        task_id=campaign.task_id or None,
        queue=queue,
        routing_key=queue,
    )


def _send_judging(judge_run: JudgeRun) -> None:
    queue = QueueName.JUDGE.value
    send(
        TaskName.JUDGE_CAMPAIGN,
        args=[judge_run.pk],
        task_id=judge_run.task_id or None,
        queue=queue,
        routing_key=queue,
    )


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
    send=_send_generation,
    audit=_audit("campaign"),
)
JUDGE_RUN_KIND = JobKind(
    name="judge_run",
    model=JudgeRun,
    waiting=(JudgeRun.Status.QUEUED,),
    running=(JudgeRun.Status.RUNNING,),
    cancelled=None,
    send=_send_judging,
    audit=_audit("judge_run"),
)
JOB_KINDS = (CAMPAIGN_KIND, JUDGE_RUN_KIND)


def campaign_enqueue(campaign: Campaign) -> None:
    """Send the campaign's generation task once the transaction commits."""
    enqueue_on_commit(CAMPAIGN_KIND, campaign)


def judge_run_enqueue(judge_run: JudgeRun) -> None:
    """Send the judge run's task once the transaction commits."""
    enqueue_on_commit(JUDGE_RUN_KIND, judge_run)
