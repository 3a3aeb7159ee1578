"""Celery tasks of human evaluation: generate a campaign's missing outputs (GPU queue) and run
the LLM judge on a campaign's items in both orders (judge queue).

Thin adapters over the annotation services (``services/jobs.py``), which claim each job with a
lease and record a failure on the campaign or judge run with its reason.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from celery import shared_task

from webapp.annotation.services.jobs import campaign_generate, judge_run_execute
from webapp.studio.services.leases import worker_name
from workers.queues import TaskName


@shared_task(
    name=TaskName.GENERATE_CAMPAIGN_OUTPUTS.value,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def generate_campaign_outputs(self: Any, campaign_id: int) -> dict[str, Any]:
    """Generate the campaign's missing outputs, then build its items and open it."""
    return campaign_generate(campaign_id, worker=worker_name(self.request.id or uuid4().hex))


@shared_task(
    name=TaskName.JUDGE_CAMPAIGN.value, bind=True, acks_late=True, reject_on_worker_lost=True
)
def judge_campaign(self: Any, judge_run_id: int) -> dict[str, Any]:
    """Run the judge run's judge on every item of its campaign, in both orders, chunk by chunk."""
    return judge_run_execute(judge_run_id, worker=worker_name(self.request.id or uuid4().hex))
