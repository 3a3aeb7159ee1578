"""How a pipeline job ended, from what its work did: a job that did less than asked never
says "succeeded".

Writing and grading count what worked and what failed; all failed is ``failed``, some is
``partial``. The message says the counts and the first error, and the progress bar shows the
share that worked, so "scored 0/6" cannot read as 100%.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

__all__ = ["JobOutcome", "error_text", "job_outcome"]

# (result key of the items that worked, what the message calls them)
_COUNTED = {"score_references": ("scored", "scored"), "generate_references": ("written", "written")}


@dataclass(frozen=True)
class JobOutcome:
    status: str  # a PipelineJob.Status value
    message: str
    progress: float | None  # None: leave the progress as the work left it
    error: str = ""


def job_outcome(kind: str, result: dict[str, Any]) -> JobOutcome:
    """The status, message and progress of a job of ``kind`` whose work returned ``result``
    (not stopped: a cancelled job is recorded as such by the caller)."""
    counted = _COUNTED.get(kind)
    if counted is None:
        return JobOutcome("succeeded", "", 1.0)
    key, verb = counted
    worked, failed = int(result.get(key, 0)), int(result.get("failed", 0))
    total = worked + failed
    if failed == 0:
        return JobOutcome("succeeded", f"{verb} {worked}/{total}", 1.0)
    errors = [str(e) for e in result.get("errors") or [] if e]
    first = f"; first error: {errors[0]}" if errors else ""
    message = f"{verb} {worked}/{total}, {failed} failed{first}"[:500]
    status = "failed" if worked == 0 else "partial"
    return JobOutcome(status, message, worked / total, error=message if worked == 0 else "")


def error_text(error: BaseException) -> str:
    """What a failed job shows: the exception's type and message, readable on its own (the
    traceback goes to the worker's log)."""
    return "".join(traceback.format_exception_only(type(error), error)).strip()[:4000]
