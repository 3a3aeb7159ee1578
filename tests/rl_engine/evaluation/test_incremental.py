"""Judging an evaluation's responses in parts (as a resumed judging phase does) and
aggregating the stored results afterwards gives the aggregates of judging them all at once."""

from __future__ import annotations

import json

import pytest

from rl_engine.evaluation.evaluators import make_evaluators
from rl_engine.evaluation.runner import (
    Criterion,
    EvalItem,
    EvalSettings,
    Generated,
    aggregate_results,
    judge_items_sync,
    judge_responses_sync,
)
from rl_engine.judging import JudgeSpec


def items() -> list[EvalItem]:
    return [
        EvalItem(
            str(i),
            f"Write {i * 40 + 60} words about the sea, part {i}.",
            domain="sea" if i % 2 else "land",
            required_words=i * 40 + 60,
            criteria=(Criterion("Imagery"), Criterion("Tone", "calm")),
            baseline="The sea was grey. " * (i + 1),
        )
        for i in range(7)
    ]


def responses(kind: str) -> list[Generated]:
    iterations = 2 if kind == "creative" else 1
    return [
        Generated(item.item_id, it, f"Waves {item.item_id} roll in, slow and silver. " * (it + 3))
        for item in items()
        for it in range(iterations)
    ]


@pytest.mark.parametrize("kind", ["writingbench", "longbench_write", "creative", "pairwise"])
def test_judging_in_parts_then_aggregating_equals_judging_at_once(kind: str) -> None:
    extra = {"iterations": 2, "temperature": 0.7} if kind == "creative" else {}
    settings = EvalSettings(kind=kind, bootstrap=50, **extra)
    evaluators = make_evaluators(JudgeSpec(endpoint="heuristic"))
    generated = responses(kind)
    whole, aggregates = judge_responses_sync(items(), generated, settings, evaluators)
    parts = []
    for start in range(0, len(generated), 3):
        parts += judge_items_sync(items(), generated[start : start + 3], settings, evaluators)
    # Stored results go through JSON (JSONField): aggregate what a database gives back.
    for result in parts:
        result.details = json.loads(json.dumps(result.details))
    assert [(r.item_id, r.iteration, r.score) for r in parts] == [
        (r.item_id, r.iteration, r.score) for r in whole
    ]
    assert aggregate_results(items(), generated, parts, settings) == aggregates
