"""The background jobs of human evaluation on the common lifecycle
(``webapp.studio.services.leases``): a campaign's output generation and an LLM judge run.

Both are claimed with a lease (a fencing token), keep a heartbeat, store their work as it
comes — each chunk of outputs or votes in a fenced transaction, so a worker that was taken
over stores nothing more — and resume by storing only what is missing: generation skips the
outputs a system already has, a judge run the items it already judged (a resume pays only for
the missing calls). The sweep sends the task of a job whose worker or message was lost again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.utils import timezone

from rl_engine import judging
from rl_engine.judging import PairRequest
from webapp.annotation.models import Campaign, Item, JudgeRun
from webapp.annotation.services.campaigns import (
    campaign_build_items,
    campaign_missing_outputs,
    system_outputs_store,
)
from webapp.annotation.services.job_kinds import (
    CAMPAIGN_KIND,
    JOB_KINDS,
    JUDGE_RUN_KIND,
    campaign_enqueue,
    judge_run_enqueue,
)
from webapp.annotation.services.judge_runs import judge_outcome, judge_votes_store
from webapp.studio.paths import check_model, checked_judge
from webapp.studio.services.job_outcome import error_text
from webapp.studio.services.leases import Lease, LeaseLost, lease_claim

log = logging.getLogger(__name__)

# The kinds and their sending are in .job_kinds (the create services send on commit).
__all__ = [
    "CAMPAIGN_KIND",
    "CHUNK",
    "JOB_KINDS",
    "JUDGE_RUN_KIND",
    "campaign_enqueue",
    "campaign_generate",
    "judge_run_enqueue",
    "judge_run_execute",
]

# Outputs generated, or items judged (two calls each), between two stored chunks.
CHUNK = 8


def campaign_generate(campaign_id: int, *, worker: str) -> dict[str, Any]:
    """Claim the campaign, generate every missing output of its generated systems (stored
    chunk by chunk), then build the items and open it. A failure is recorded on the campaign
    and raised; a lost lease stops the worker without a write."""
    from rl_engine.models import generate, load_policy

    lease = lease_claim(
        Campaign, campaign_id, worker=worker, waiting=(), running=CAMPAIGN_KIND.running
    )
    if lease is None:
        return {"campaign": campaign_id, "claimed": False}
    generated: dict[str, int] = {}
    try:
        with lease.heartbeat():
            campaign = Campaign.objects.get(pk=campaign_id)
            missing = campaign_missing_outputs(campaign)
            # Every system is checked before the first output is generated: a policy edited
            # in the database since the form checked it fails the campaign with the reason,
            # having generated nothing.
            for system, instructions in missing.items():
                if not system.is_generated:
                    raise ValueError(
                        f"system {system.label!r} ({system.kind}) lacks outputs for "
                        f"{len(instructions)} instruction(s) and cannot generate them"
                    )
                check_model(system.policy, f"system {system.label!r} policy")
            for system, instructions in missing.items():
                lease.check()
                started = time.monotonic()
                model, tokenizer = load_policy(system.policy)
                for start in range(0, len(instructions), CHUNK):
                    chunk = instructions[start : start + CHUNK]
                    texts = generate(
                        model,
                        tokenizer,
                        [instruction.prompt for instruction in chunk],
                        max_new_tokens=campaign.max_new_tokens,
                    )
                    with lease.fenced():
                        system_outputs_store(
                            system=system,
                            texts={i.pk: text for i, text in zip(chunk, texts, strict=True)},
                        )
                    generated[system.label] = generated.get(system.label, 0) + len(texts)
                log.info(
                    "campaign %s: %d outputs for %s in %.1fs", campaign_id,
                    generated.get(system.label, 0), system.label, time.monotonic() - started,
                )  # fmt: skip
            with lease.fenced():
                items = campaign_build_items(campaign=campaign)  # opens it: the lease ends
    except LeaseLost as error:
        log.warning("campaign %s: %s; this worker stops", campaign_id, error)
        return {"campaign": campaign_id, "claimed": True, "status": "lease_lost"}
    except Exception as exc:
        log.exception("campaign %s: generation failed", campaign_id)
        lease.finish(
            Campaign.Status.FAILED,
            error=error_text(exc),
        )
        raise
    return {"campaign": campaign_id, "generated": generated, "items": items}


def judge_run_execute(judge_run_id: int, *, worker: str) -> dict[str, Any]:
    """Claim the judge run and judge every item not judged yet in both orders, storing the
    votes of each chunk of items as they come (a resumed run pays only for the missing
    ones); INVALID verdicts keep their reason."""

    lease = lease_claim(JudgeRun, judge_run_id, worker=worker, cancelled=None)
    if lease is None:
        return {"judge_run": judge_run_id, "claimed": False}
    stored = 0
    try:
        with lease.heartbeat():
            judge_run = JudgeRun.objects.select_related("campaign").get(pk=judge_run_id)
            # Resolved by name in the registry now, a local model and a cache checked
            # against the roots: a spec edited in the database fails the run unjudged.
            judge = judging.make_judge(checked_judge(judge_run.spec))
            items = list(
                Item.objects.filter(campaign=judge_run.campaign)
                .exclude(judge_votes__judge_run=judge_run)
                .select_related("instruction", "output_a", "output_b")
                .order_by("position")
            )
            for start in range(0, len(items), CHUNK):
                chunk = items[start : start + CHUNK]
                requests = []
                for item in chunk:
                    prompt, a, b = item.instruction.prompt, item.output_a.text, item.output_b.text
                    requests += [PairRequest(prompt, a, b), PairRequest(prompt, b, a)]
                lease.check()
                judgments = judge.compare_sync(requests)
                rows = []
                for index, judgment in enumerate(judgments):
                    order = "ab" if index % 2 == 0 else "ba"
                    verdict = judgment.verdict.value
                    rows.append(
                        {
                            "item": chunk[index // 2],
                            "order": order,
                            "verdict": verdict,
                            "outcome": judge_outcome(verdict, order),
                            "rationale": judgment.rationale or "",
                            "error": judgment.error or "",
                            "latency_s": judgment.latency_s,
                            "attempts": judgment.attempts,
                            "prompt_tokens": judgment.usage.prompt_tokens,
                            "completion_tokens": judgment.usage.completion_tokens,
                        }
                    )
                with lease.fenced():
                    stored += judge_votes_store(judge_run=judge_run, rows=rows)
    except LeaseLost as error:
        log.warning("judge run %s: %s; this worker stops", judge_run_id, error)
        return {"judge_run": judge_run_id, "claimed": True, "status": "lease_lost"}
    except Exception as exc:
        log.exception("judge run %s failed", judge_run_id)
        lease.finish(JudgeRun.Status.FAILED, error=error_text(exc), finished_at=timezone.now())
        raise
    if not lease.finish(JudgeRun.Status.SUCCEEDED, error="", finished_at=timezone.now()):
        return {"judge_run": judge_run_id, "claimed": True, "status": "lease_lost"}
    return {"judge_run": judge_run_id, "judgments": stored}


__all__ = [
    "CAMPAIGN_KIND",
    "JOB_KINDS",
    "JUDGE_RUN_KIND",
    "Lease",
    "campaign_enqueue",
    "campaign_generate",
    "judge_run_enqueue",
    "judge_run_execute",
]
