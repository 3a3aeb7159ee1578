"""Judge runs: an LLM judge on every item of a campaign, in both orders."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from rl_engine.outcomes import Outcome
from webapp.annotation.models import Campaign, JudgeRun, JudgeVote
from webapp.annotation.services.job_kinds import judge_run_enqueue
from webapp.studio.paths import ConfigRefused, checked_judge


def judge_run_create(
    *, campaign: Campaign, spec: Mapping[str, Any], created_by: Any = None, enqueue: bool = True
) -> JudgeRun:
    """Queue the judge on every item of ``campaign`` in both orders (judge queue).

    ``spec`` is a ``JudgeSpec`` dict naming a declared endpoint; it is validated here (and
    resolved against the deployment's endpoints) so a bad spec fails on the form, not in the
    worker, which resolves it again when it runs.
    """
    try:
        judge_spec = checked_judge(spec, "spec")  # the checked resolver the worker uses too
        resolved = judge_spec.resolve()
    except ConfigRefused as exc:
        raise ValidationError({"spec": exc.message}) from exc
    name = f"{judge_spec.endpoint}:{resolved.model}" if resolved.model else judge_spec.endpoint
    with transaction.atomic():
        judge_run = JudgeRun.objects.create(
            campaign=campaign,
            judge_name=name,
            spec=judge_spec.to_dict(),
            created_by=created_by,
            task_id=str(uuid.uuid4()),
        )
        if enqueue:
            judge_run_enqueue(judge_run)
    return judge_run


def judge_outcome(verdict: str, order: str) -> str:
    """A judge's verdict letter undone into the item's canonical order: ``a``, ``b``, ``tie``,
    or ``""`` for INVALID. In order ``ba`` system B's text was shown first (as A).

    >>> judge_outcome("A", "ab"), judge_outcome("A", "ba"), judge_outcome("INVALID", "ba")
    ('a', 'b', '')
    """
    if order not in JudgeVote.A_POSITION:
        raise ValueError(f"order must be 'ab' or 'ba', got {order!r}")
    outcome = Outcome.from_verdict(verdict, JudgeVote.A_POSITION[order])
    return JudgeVote.LABELS[outcome.value]


def judge_votes_store(*, judge_run: JudgeRun, rows: Sequence[Mapping[str, Any]]) -> int:
    """Store judge verdicts (one dict per item and order); re-running keeps earlier rows."""
    created = JudgeVote.objects.bulk_create(
        [JudgeVote(judge_run=judge_run, **row) for row in rows], ignore_conflicts=True
    )
    return len(created)


def judge_run_mark(*, judge_run_id: int, status: str, error: str = "") -> None:
    finished = (
        timezone.now() if status in (JudgeRun.Status.SUCCEEDED, JudgeRun.Status.FAILED) else None
    )
    JudgeRun.objects.filter(pk=judge_run_id).update(
        status=status, error=error, finished_at=finished
    )
