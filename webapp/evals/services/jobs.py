"""Evaluation runs on the common job lifecycle (``webapp.studio.services.leases``).

An evaluation is two jobs on one row: generation (``queued`` → ``generating``, GPU queue)
and judging (``judging``, judge queue); generation hands the row over to judging by
releasing its lease with the status ``judging``. Each phase is one kind for the sweep, which
sends the phase's task again when its worker or its message was lost.
"""

from __future__ import annotations

from typing import Any

from webapp.evals.models import EvalRun
from webapp.studio.models import AuditLog
from webapp.studio.services.leases import JobKind, enqueue_on_commit, send_now
from workers.dispatch import send
from workers.queues import TaskName


def _send_generation(eval_run: EvalRun) -> None:
    send(TaskName.GENERATE_EVAL_RUN, args=[eval_run.pk], task_id=eval_run.task_id or None)


def _send_judging(eval_run: EvalRun) -> None:
    send(TaskName.JUDGE_EVAL_RUN, args=[eval_run.pk])


def _audit(eval_run: EvalRun, action: str, details: dict[str, Any]) -> None:
    AuditLog.objects.create(action=f"eval_{action}", details={**details, "eval_run": eval_run.pk})


EVAL_GENERATE_KIND = JobKind(
    name="evaluation generation",
    model=EvalRun,
    waiting=(EvalRun.Status.QUEUED,),
    running=(EvalRun.Status.GENERATING,),
    cancelled=None,
    send=_send_generation,
    audit=_audit,
)
EVAL_JUDGE_KIND = JobKind(
    name="evaluation judging",
    model=EvalRun,
    waiting=(),
    running=(EvalRun.Status.JUDGING,),
    cancelled=None,
    send=_send_judging,
    audit=_audit,
)
JOB_KINDS = (EVAL_GENERATE_KIND, EVAL_JUDGE_KIND)


def eval_run_enqueue(*, eval_run: EvalRun) -> None:
    """Send the generation task when the current transaction commits (a failed send leaves
    the run queued for the sweep)."""
    enqueue_on_commit(EVAL_GENERATE_KIND, eval_run)


def eval_run_hand_to_judging(eval_run_id: int) -> None:
    """Send the judging task of a run whose responses are stored (generation released its
    lease; the sweep sends it again if this send fails)."""
    send_now(EVAL_JUDGE_KIND, EvalRun.objects.get(pk=eval_run_id))
