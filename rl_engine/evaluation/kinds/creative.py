"""Creative writing (after EQ-Bench v3): rubric criteria scored 0-20 (faults inverted), piece
score 0-100, several iterations per prompt and a bootstrap interval over prompts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rl_engine.evaluation.core import (
    Criterion,
    EvalSettings,
    Evaluators,
    ItemResult,
    Pairs,
    Tracker,
    grade_all,
)
from rl_engine.evaluation.grading import RubricRequest, creative_rubric
from rl_engine.evaluation.metrics import RubricPiece, rubric_piece_score, rubric_summary
from rl_engine.text import count_words

# EQ-Bench v3 scores pieces on a long list of criteria; these are a short list in our words.
DEFAULT_CREATIVE_CRITERIA: tuple[Criterion, ...] = (
    Criterion("Adherence to the instructions"),
    Criterion("Vivid, specific imagery"),
    Criterion("Coherent narrative"),
    Criterion("Emotional engagement"),
    Criterion("Originality"),
    Criterion("Purple prose", negative=True),
    Criterion("Meandering or repetition", negative=True),
)


async def judge(
    pairs: Pairs,
    evaluators: Evaluators,
    settings: EvalSettings,
    tracker: Tracker,
) -> tuple[list[ItemResult], dict[str, Any]]:
    results = await judge_items(pairs, evaluators, settings, tracker)
    return results, aggregate(pairs, results, settings)


async def judge_items(
    pairs: Pairs, evaluators: Evaluators, settings: EvalSettings, tracker: Tracker
) -> list[ItemResult]:
    """Each piece's rubric grades (kept in its details with the piece's fault criteria)."""
    requests = []
    for item, generated in pairs:
        criteria = item.criteria or DEFAULT_CREATIVE_CRITERIA
        rubric = creative_rubric(
            [c.name for c in criteria], [c.name for c in criteria if c.negative]
        )
        requests.append(RubricRequest(item.prompt, generated.response, rubric))
    grades = await grade_all(evaluators.grader, requests, "creative", tracker)
    results = []
    for (item, generated), request, grade in zip(pairs, requests, grades, strict=True):
        negative = {d.key for d in request.rubric.dimensions if d.negative}
        failed = None if grade.values is not None else f"rubric judgment failed: {grade.error}"
        piece = None
        if grade.values is not None:
            piece = rubric_piece_score(grade.values, negative)
        results.append(
            ItemResult(
                item.item_id, generated.iteration, generated.response,
                count_words(generated.response), piece,
                details={"criteria": grade.values, "negative": sorted(negative),
                         "reason": grade.reason},
                error=failed,
                judge_latency_s=grade.latency_s,
                judge_attempts=grade.attempts,
                judge_usage=grade.usage,
            )
        )  # fmt: skip
    return results


def aggregate(
    pairs: Pairs, results: Sequence[ItemResult], settings: EvalSettings
) -> dict[str, Any]:
    """The pooled piece score with its bootstrap interval (from the stored grades)."""
    pieces = []
    faults: set[str] = set()
    for (item, generated), result in zip(pairs, results, strict=True):
        faults |= set(result.details.get("negative") or ())
        values = result.details.get("criteria")
        if values is not None:
            pieces.append(RubricPiece(item.item_id, generated.iteration, values))
    aggregates: dict[str, Any] = {"score": None, "low": None, "high": None, "pieces": len(pieces)}
    if pieces:
        summary = rubric_summary(pieces, faults, bootstrap=settings.bootstrap, seed=settings.seed)
        aggregates.update(score=summary.score, low=summary.low, high=summary.high)
    aggregates["invalid"] = len(results) - len(pieces)
    return aggregates
