"""Celery tasks of human evaluation: generate a campaign's missing outputs (GPU queue) and run
the LLM judge on a campaign's items in both orders (judge queue).

Thin by design: load ids, call the engine, write through the annotation services. A failure
is recorded on the campaign or judge run with its reason; nothing fails silently.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

from celery import shared_task

from workers.queues import QueueName

logger = logging.getLogger(__name__)

GENERATE_TASK = "workers.tasks.annotation.generate_campaign_outputs"
JUDGE_TASK = "workers.tasks.annotation.judge_campaign"


def enqueue_generation(campaign_id: int) -> str:
    """Queue output generation for a campaign on the GPU queue; returns the task id."""
    from webapp.annotation.models import Campaign

    result = generate_campaign_outputs.apply_async(
        args=[campaign_id], queue=QueueName.GPU.value, routing_key=QueueName.GPU.value
    )
    Campaign.objects.filter(pk=campaign_id).update(task_id=result.id)
    return str(result.id)


def enqueue_judging(judge_run_id: int) -> str:
    """Queue a judge run on the judge queue; returns the task id."""
    from webapp.annotation.models import JudgeRun

    result = judge_campaign.apply_async(
        args=[judge_run_id], queue=QueueName.JUDGE.value, routing_key=QueueName.JUDGE.value
    )
    JudgeRun.objects.filter(pk=judge_run_id).update(task_id=result.id)
    return str(result.id)


@shared_task(name=GENERATE_TASK, acks_late=True, reject_on_worker_lost=True)
def generate_campaign_outputs(campaign_id: int) -> dict[str, Any]:
    """Generate every missing output of a campaign's checkpoint / run / base-policy systems
    with :func:`rl_engine.models.generate`, then build the items and open the campaign."""
    from rl_engine.models import generate, load_policy
    from webapp.annotation.models import Campaign
    from webapp.annotation.services.campaigns import (
        campaign_build_items,
        campaign_fail,
        campaign_missing_outputs,
        system_outputs_store,
    )

    campaign = Campaign.objects.get(pk=campaign_id)
    generated: dict[str, int] = {}
    try:
        for system, instructions in campaign_missing_outputs(campaign).items():
            if not system.is_generated:
                raise ValueError(
                    f"system {system.label!r} ({system.kind}) lacks outputs for "
                    f"{len(instructions)} instruction(s) and cannot generate them"
                )
            started = time.monotonic()
            model, tokenizer = load_policy(system.policy)
            texts = generate(
                model,
                tokenizer,
                [instruction.prompt for instruction in instructions],
                max_new_tokens=campaign.max_new_tokens,
            )
            system_outputs_store(
                system=system,
                texts={i.pk: text for i, text in zip(instructions, texts, strict=True)},
            )
            generated[system.label] = len(texts)
            logger.info(
                "campaign %s: %d outputs for %s in %.1fs",
                campaign_id,
                len(texts),
                system.label,
                time.monotonic() - started,
            )
        items = campaign_build_items(campaign=campaign)
    except Exception as exc:
        logger.exception("campaign %s: generation failed", campaign_id)
        campaign_fail(
            campaign_id=campaign_id,
            error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
        )
        raise
    return {"campaign": campaign_id, "generated": generated, "items": items}


@shared_task(name=JUDGE_TASK, acks_late=True, reject_on_worker_lost=True)
def judge_campaign(judge_run_id: int) -> dict[str, Any]:
    """Run the judge of a :class:`JudgeRun` on every item in both orders and store one
    JudgeVote per item and order (INVALID verdicts keep their reason)."""
    from rl_engine.judging import JudgeSpec, PairRequest, make_judge
    from webapp.annotation.models import Item, JudgeRun
    from webapp.annotation.services.judge_runs import (
        judge_outcome,
        judge_run_mark,
        judge_votes_store,
    )

    judge_run = JudgeRun.objects.select_related("campaign").get(pk=judge_run_id)
    judge_run_mark(judge_run_id=judge_run_id, status=JudgeRun.Status.RUNNING)
    try:
        judge = make_judge(JudgeSpec.from_dict(judge_run.spec))
        items = list(
            Item.objects.filter(campaign=judge_run.campaign)
            .exclude(judge_votes__judge_run=judge_run)
            .select_related("instruction", "output_a", "output_b")
            .order_by("position")
        )
        requests = []
        for item in items:
            prompt, a, b = item.instruction.prompt, item.output_a.text, item.output_b.text
            requests.append(PairRequest(prompt, a, b))
            requests.append(PairRequest(prompt, b, a))
        judgments = judge.compare_sync(requests) if requests else []
        rows = []
        for index, judgment in enumerate(judgments):
            order = "ab" if index % 2 == 0 else "ba"
            verdict = judgment.verdict.value
            rows.append(
                {
                    "item": items[index // 2],
                    "order": order,
                    "verdict": verdict,
                    "outcome": judge_outcome(verdict, order),
                    "rationale": judgment.rationale or "",
                    "error": judgment.error or "",
                    "latency_s": judgment.latency_s,
                }
            )
        stored = judge_votes_store(judge_run=judge_run, rows=rows)
    except Exception as exc:
        logger.exception("judge run %s failed", judge_run_id)
        judge_run_mark(
            judge_run_id=judge_run_id,
            status=JudgeRun.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}",
        )
        raise
    judge_run_mark(judge_run_id=judge_run_id, status=JudgeRun.Status.SUCCEEDED)
    return {"judge_run": judge_run_id, "judgments": stored}
