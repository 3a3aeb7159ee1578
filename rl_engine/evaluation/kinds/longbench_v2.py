"""LongBench v2: multiple choice over a long context cut from the middle to fit the window;
accuracy overall, by difficulty and by context length."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rl_engine.evaluation.core import EvalSettings, Evaluators, ItemResult, Pairs, Tracker
from rl_engine.evaluation.longinput import accuracy, extract_choice
from rl_engine.text import count_words


async def judge(
    pairs: Pairs, evaluators: Evaluators, settings: EvalSettings, tracker: Tracker
) -> tuple[list[ItemResult], dict[str, Any]]:
    """Extract each chosen letter and score accuracy; no judge is called."""
    results = await judge_items(pairs, evaluators, settings, tracker)
    return results, aggregate(pairs, results, settings)


async def judge_items(
    pairs: Pairs, evaluators: Evaluators, settings: EvalSettings, tracker: Tracker
) -> list[ItemResult]:
    """Each response's extracted letter against the answer."""
    results = []
    for item, generated in pairs:
        assert item.long_input is not None
        choice = extract_choice(generated.response, settings.extraction)
        correct = choice == item.long_input.answer
        results.append(
            ItemResult(
                item.item_id, generated.iteration, generated.response,
                count_words(generated.response), 100.0 if correct else 0.0,
                details={
                    "predicted": choice, "answer": item.long_input.answer, "correct": correct,
                    "difficulty": item.long_input.difficulty, "length": item.long_input.length,
                    "context_tokens": generated.context_tokens,
                    "truncated_tokens": generated.truncated_tokens,
                },
                error=None if choice is not None else "no answer of the form "
                "'The correct answer is (X)' (counted as wrong)",
            )
        )  # fmt: skip
    return results


def aggregate(
    pairs: Pairs, results: Sequence[ItemResult], settings: EvalSettings
) -> dict[str, Any]:
    """Accuracy overall, by difficulty and by length (from the stored predictions)."""
    predictions: dict[str, str | None] = {}
    for (item, _generated), result in zip(pairs, results, strict=True):
        assert item.long_input is not None
        predictions[item.long_input.item_id] = result.details.get("predicted")
    table = accuracy([item.long_input for item, _g in pairs if item.long_input], predictions)

    def rates(breakdown: Mapping[str, tuple[int, int]]) -> dict[str, float]:
        return {k: 100.0 * c / t for k, (c, t) in breakdown.items() if t}

    return {
        "score": 100.0 * table.overall if table.overall is not None else None,
        "accuracy": table.overall,
        "correct": table.correct,
        "total": table.total,
        "invalid": table.invalid,
        "by_difficulty": rates(table.by_difficulty),
        "by_length": rates(table.by_length),
        "truncated": sum(1 for _i, g in pairs if g.truncated_tokens > 0),
        "extraction": settings.extraction,
    }
