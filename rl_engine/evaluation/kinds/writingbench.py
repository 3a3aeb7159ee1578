"""WritingBench: each criterion of an item scored 1-10 by a pointwise scorer, one criterion
at a time; item score = mean x 10; overall = mean of all criterion scores x 10."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from rl_engine.evaluation.core import (
    Criterion,
    EvalSettings,
    Evaluators,
    ItemResult,
    Pairs,
    Tracker,
    criterion_text,
    in_chunks,
    mean,
)
from rl_engine.evaluation.metrics import writingbench_summary
from rl_engine.judging.types import Score
from rl_engine.judging.usage import Usage
from rl_engine.text import count_words


async def judge(
    pairs: Pairs, evaluators: Evaluators, settings: EvalSettings, tracker: Tracker
) -> tuple[list[ItemResult], dict[str, Any]]:
    results = await judge_items(pairs, evaluators, settings, tracker)
    return results, aggregate(pairs, results, settings)


async def judge_items(
    pairs: Pairs, evaluators: Evaluators, settings: EvalSettings, tracker: Tracker
) -> list[ItemResult]:
    """Each response's criteria scored; the details keep every criterion's score (the
    aggregates are computed from them, so stored results can be aggregated later)."""
    scorer = evaluators.scorer
    if scorer is None:
        raise ValueError("writingbench needs a pointwise scorer (Evaluators.scorer)")
    jobs = [
        (index, criterion)
        for index, (item, _generated) in enumerate(pairs)
        for criterion in item.criteria
    ]

    async def score(part: Sequence[tuple[int, Criterion]]) -> list[Score]:
        return list(
            await asyncio.gather(
                *(
                    scorer.score(pairs[i][0].prompt, pairs[i][1].response, criterion_text(c))
                    for i, c in part
                )
            )
        )

    scores: list[Score] = await in_chunks(score, jobs, tracker)
    per_item: list[list[tuple[Criterion, Score]]] = [[] for _ in pairs]
    for (index, criterion), grade in zip(jobs, scores, strict=True):
        per_item[index].append((criterion, grade))
    results = []
    for (item, generated), graded in zip(pairs, per_item, strict=True):
        values = [g.value for _c, g in graded]
        valid = [v for v in values if v is not None]
        errors = [f"{c.name}: {g.error}" for c, g in graded if g.value is None]
        error = None
        if not item.criteria:
            error = "the item has no criteria to score"
        elif not valid:
            error = "every criterion judgment failed: " + "; ".join(errors)
        results.append(
            ItemResult(
                item.item_id, generated.iteration, generated.response,
                count_words(generated.response),
                score=mean(valid) * 10.0 if valid else None,  # type: ignore[operator]
                details={
                    "criteria": [
                        {"name": c.name, "score": g.value, "reason": g.reason, "error": g.error}
                        for c, g in graded
                    ],
                    "invalid_criteria": len(errors),
                },
                error=error,
                judge_latency_s=sum(g.latency_s for _c, g in graded),
                judge_attempts=sum(g.attempts for _c, g in graded),
                judge_usage=sum((g.usage for _c, g in graded), Usage()),
            )
        )  # fmt: skip
    return results


def aggregate(
    pairs: Pairs, results: Sequence[ItemResult], settings: EvalSettings
) -> dict[str, Any]:
    """WritingBench's aggregation over judged responses (from their stored criteria)."""
    criterion_scores: dict[str, list[int | None]] = {}
    domains: dict[str, str] = {}
    for (item, generated), result in zip(pairs, results, strict=True):
        key = f"{item.item_id}#{generated.iteration}"
        criterion_scores[key] = [c.get("score") for c in result.details.get("criteria", [])]
        domains[key] = item.domain or "(none)"
    summary = writingbench_summary(criterion_scores, domains)
    return {
        "score": summary.overall_x10,
        "overall_1_10": summary.overall,
        "criteria_scored": summary.scored,
        "criteria_invalid": summary.invalid,
    }
