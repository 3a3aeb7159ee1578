"""How a pipeline job ended, from what its work did: a job that did less than asked never
says "succeeded".

Every kind counts what worked and what did not:

- writing, grading and the policy's answers count the items that worked and those that
  failed: all failed is ``failed``, some is ``partial``, with the counts and the first error;
- ordering tiers counts the references it tiered and those left untiered (unscored): none
  tiered is ``failed``, some untiered is ``partial``;
- a selection that chose nothing (or could not run: e.g. unscored instructions) is
  ``failed``, one that chose fewer than the ``k`` asked is ``partial``.

A job that found nothing to work on (no instructions, no unscored reference, no reference to
order) is ``failed``: "succeeded 100%" on nothing would hide a step that ran too early or on
the wrong split. The progress bar shows the share that worked, so "scored 0/6" cannot read as
100%.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

__all__ = ["JobOutcome", "error_text", "job_outcome"]

# (result key of the items that worked, what the message calls them, what "nothing" means)
_COUNTED = {
    "score_references": ("scored", "scored", "nothing to grade: no unscored reference"),
    "generate_references": ("written", "written", "nothing to write: no instruction"),
    "policy_responses": ("graded", "answers graded", "nothing to answer: no train instruction"),
}


@dataclass(frozen=True)
class JobOutcome:
    status: str  # a PipelineJob.Status value
    message: str
    progress: float | None  # None: leave the progress as the work left it
    error: str = ""


def _failed(message: str) -> JobOutcome:
    return JobOutcome("failed", message[:500], 0.0, error=message[:500])


def _first_error(result: dict[str, Any]) -> str:
    errors = [str(e) for e in result.get("errors") or [] if e]
    return f"; first error: {errors[0]}" if errors else ""


def _order_outcome(result: dict[str, Any]) -> JobOutcome:
    tiered, untiered = int(result.get("tiered", 0)), int(result.get("untiered", 0))
    instructions = int(result.get("instructions", 0))
    total = tiered + untiered
    if total == 0:
        return _failed("nothing to order: no reference")
    if tiered == 0:
        return _failed(f"tiered 0/{total} references: none is scored (grade them first)")
    message = f"tiered {tiered}/{total} references of {instructions} instructions"
    if untiered:
        return JobOutcome(
            "partial", f"{message}, {untiered} unscored left untiered", tiered / total
        )
    return JobOutcome("succeeded", message, 1.0)


def _select_outcome(result: dict[str, Any]) -> JobOutcome:
    if result.get("error"):
        return _failed(f"selected nothing: {result['error']}")
    chosen, candidates = int(result.get("chosen", 0)), int(result.get("candidates", 0))
    k = result.get("k")
    if chosen == 0:
        return _failed(f"chose 0 of {candidates} instructions")
    if k is not None and chosen < int(k):
        return JobOutcome(
            "partial",
            f"chose {chosen} of k={k} asked: only {candidates} candidate instructions",
            chosen / int(k),
        )
    return JobOutcome("succeeded", f"chose {chosen} of {candidates} instructions", 1.0)


def job_outcome(kind: str, result: dict[str, Any]) -> JobOutcome:
    """The status, message and progress of a job of ``kind`` whose work returned ``result``
    (not stopped: a cancelled job is recorded as such by the caller)."""
    if kind == "order_tiers":
        return _order_outcome(result)
    if kind == "select":
        return _select_outcome(result)
    counted = _COUNTED.get(kind)
    if counted is None:
        return JobOutcome("succeeded", "", 1.0)
    key, verb, nothing = counted
    worked, failed = int(result.get(key, 0)), int(result.get("failed", 0))
    resumed = int(result.get("resumed", 0))
    total = worked + failed
    if total == 0:
        if resumed:  # a resumed job whose earlier attempt did it all
            return JobOutcome("succeeded", f"{verb} {resumed}/{resumed} (resumed)", 1.0)
        return _failed(nothing)
    if failed == 0:
        return JobOutcome("succeeded", f"{verb} {worked}/{total}", 1.0)
    message = f"{verb} {worked}/{total}, {failed} failed{_first_error(result)}"[:500]
    status = "failed" if worked == 0 else "partial"
    return JobOutcome(status, message, worked / total, error=message if worked == 0 else "")


def error_text(error: BaseException) -> str:
    """What a failed job shows: the exception's type and message, readable on its own (the
    traceback goes to the worker's log)."""
    return "".join(traceback.format_exception_only(type(error), error)).strip()[:4000]
