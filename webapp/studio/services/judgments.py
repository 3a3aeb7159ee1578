"""Judgment rows of a run: the one place they are written, for every backend.

A TRL run's reporter and a verl run's reward hook (through the internal API) both hand over
``JudgmentRecord``\\ s — one per judge call — and :func:`judgments_store` writes them. A row
means the same thing whichever backend wrote it:

* ``verdict`` — the *rollout's* outcome against its reference (win / tie / loss / invalid,
  :class:`rl_engine.outcomes.Outcome`). With the reward position "both" it is the outcome
  combined over the two orders, so both rows of a rollout carry it;
* ``order_verdict`` — the judge's own letter in this call (A / B / TIE / INVALID), with
  ``position`` saying where the policy's text was shown ("first" / "second");
* ``reward`` — the outcome's pairwise reward (None without a verdict);
* ``attempts``, ``prompt_tokens``, ``completion_tokens`` — what the call cost.
"""

from __future__ import annotations

from collections.abc import Sequence

from rl_engine.outcomes import Outcome, verdict_letter
from rl_engine.training import JudgmentRecord
from webapp.studio.models import Judgment


def judgment_row(run_id: int, record: JudgmentRecord) -> Judgment:
    """The (unsaved) row for ``record``; ``record.sample_id`` is the instruction id."""
    outcome = Outcome(record.outcome)
    return Judgment(
        run_id=run_id,
        instruction_id=int(record.sample_id),
        step=record.step,
        rollout=record.rollout,
        reference_tier=record.reference_tier,
        verdict=outcome.value,
        order_verdict=verdict_letter(record.verdict, "verdict").value,
        reward=outcome.reward,
        position=record.position[:20],
        rationale=record.rationale,
        judge=record.judge[:300],
        latency_s=record.latency_s,
        attempts=max(int(record.attempts), 0),
        error=record.error or "",
        prompt_tokens=max(int(record.prompt_tokens), 0),
        completion_tokens=max(int(record.completion_tokens), 0),
    )


def judgments_store(*, run_id: int, records: Sequence[JudgmentRecord]) -> int:
    """Write one row per record (in one batched insert); returns how many were written."""
    rows = [judgment_row(run_id, record) for record in records]
    Judgment.objects.bulk_create(rows, batch_size=500)
    return len(rows)
