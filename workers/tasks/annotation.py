"""Celery tasks of human evaluation: generate a campaign's missing outputs (GPU queue) and run
the LLM judge on a campaign's items in both orders (judge queue).

Thin by design: load ids, call the engine, write through the annotation services. A failure
is recorded on the campaign or judge run with its reason; nothing fails silently.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import uuid4

from celery import shared_task

from workers.tasks.heartbeat import worker_name

logger = logging.getLogger(__name__)

GENERATE_TASK = "workers.tasks.annotation.generate_campaign_outputs"
JUDGE_TASK = "workers.tasks.annotation.judge_campaign"


def enqueue_generation(campaign_id: int) -> str:
    """Queue output generation for a campaign on the GPU queue now; returns the task id.
    Launch paths use ``campaign_enqueue`` (on commit, recovered by the sweep)."""
    from webapp.annotation.models import Campaign
    from webapp.annotation.services.jobs import CAMPAIGN_KIND
    from webapp.studio.services.leases import send_now

    campaign = Campaign.objects.get(pk=campaign_id)
    send_now(CAMPAIGN_KIND, campaign)
    return campaign.task_id


def enqueue_judging(judge_run_id: int) -> str:
    """Queue a judge run on the judge queue now; returns the task id."""
    from webapp.annotation.models import JudgeRun
    from webapp.annotation.services.jobs import JUDGE_RUN_KIND
    from webapp.studio.services.leases import send_now

    judge_run = JudgeRun.objects.get(pk=judge_run_id)
    send_now(JUDGE_RUN_KIND, judge_run)
    return judge_run.task_id


@shared_task(name=GENERATE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def generate_campaign_outputs(self: Any, campaign_id: int) -> dict[str, Any]:
    """Generate every missing output of a campaign's checkpoint / run / base-policy systems
    with :func:`rl_engine.models.generate`, then build the items and open the campaign
    (claimed with a lease: see ``webapp.annotation.services.jobs``)."""
    from webapp.annotation.services.jobs import campaign_generate

    return campaign_generate(campaign_id, worker=worker_name(self.request.id or uuid4().hex))


@shared_task(name=JUDGE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def judge_campaign(self: Any, judge_run_id: int) -> dict[str, Any]:
    """Run the judge of a :class:`JudgeRun` on every item in both orders and store one
    JudgeVote per item and order (INVALID verdicts keep their reason), chunk by chunk."""
    from webapp.annotation.services.jobs import judge_run_execute

    return judge_run_execute(judge_run_id, worker=worker_name(self.request.id or uuid4().hex))
