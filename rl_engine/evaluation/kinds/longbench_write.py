"""LongBench-Write: length score S_l from the required words, quality S_q from six 1-5
dimensions graded by a rubric grader, S̄ = (S_l + S_q) / 2, a table per length bucket."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rl_engine.evaluation.core import (
    EvalSettings,
    Evaluators,
    ItemResult,
    Pairs,
    Tracker,
    grade_all,
)
from rl_engine.evaluation.grading import LONGBENCH_WRITE_QUALITY, RubricRequest
from rl_engine.evaluation.metrics import LongWriteRecord, length_quality_table, quality_score
from rl_engine.text import count_words, length_score


async def judge(
    pairs: Pairs, evaluators: Evaluators, settings: EvalSettings, tracker: Tracker
) -> tuple[list[ItemResult], dict[str, Any]]:
    results = await judge_items(pairs, evaluators, settings, tracker)
    return results, aggregate(pairs, results, settings)


async def judge_items(
    pairs: Pairs, evaluators: Evaluators, settings: EvalSettings, tracker: Tracker
) -> list[ItemResult]:
    """Each response's length score and graded quality (kept in its details)."""
    requests = [
        RubricRequest(item.prompt, generated.response, LONGBENCH_WRITE_QUALITY)
        for item, generated in pairs
    ]
    grades = await grade_all(evaluators.grader, requests, "longbench_write", tracker)
    results: list[ItemResult] = []
    for (item, generated), grade in zip(pairs, grades, strict=True):
        produced = count_words(generated.response)
        quality = quality_score(grade.values) if grade.values is not None else None
        s_l = length_score(item.required_words, produced) if item.required_words else None
        errors = []
        if s_l is None:
            errors.append("the item has no required length, so no length score")
        if grade.values is None:
            errors.append(f"quality judgment failed: {grade.error}")
        overall = (s_l + quality) / 2.0 if s_l is not None and quality is not None else None
        results.append(
            ItemResult(
                item.item_id, generated.iteration, generated.response, produced, overall,
                details={
                    "required_words": item.required_words,
                    "length_score": s_l,
                    "quality_score": quality,
                    "dimensions": grade.values,
                    "reason": grade.reason,
                },
                error="; ".join(errors) or None,
                judge_latency_s=grade.latency_s,
                judge_attempts=grade.attempts,
                judge_usage=grade.usage,
            )
        )  # fmt: skip
    return results


def aggregate(
    pairs: Pairs, results: Sequence[ItemResult], settings: EvalSettings
) -> dict[str, Any]:
    """S_l, S_q and S̄ per length bucket over judged responses (from their details)."""
    records: list[LongWriteRecord] = []
    for (item, _generated), result in zip(pairs, results, strict=True):
        if item.required_words:
            # A failed quality judgment still counts for S_l (quality None).
            quality = result.details.get("quality_score")
            records.append(LongWriteRecord(item.required_words, result.produced_words, quality))
    table = length_quality_table(records) if records else []
    overall_row = table[-1] if table else None
    return {
        "score": overall_row.overall if overall_row else None,
        "S_l": overall_row.length if overall_row else None,
        "S_q": overall_row.quality if overall_row else None,
        "S_bar": overall_row.overall if overall_row else None,
        "quality_invalid": sum(1 for r in results if r.details.get("dimensions") is None),
        "buckets": [
            {
                "bucket": row.bucket,
                "count": row.count,
                "S_l": row.length,
                "S_q": row.quality,
                "S_bar": row.overall,
                "quality_count": row.quality_count,
            }
            for row in table
        ],
    }
