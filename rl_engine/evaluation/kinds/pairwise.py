"""Pairwise: the system against a baseline response per item, judged in both orders (a flip is
a tie), adjusted and length-controlled win rates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rl_engine.evaluation.core import (
    EvalSettings,
    Evaluators,
    ItemResult,
    Pairs,
    Tracker,
    criterion_text,
    in_chunks,
)
from rl_engine.evaluation.winrate import combine_orders, length_controlled_win_rate
from rl_engine.judging.types import PairRequest
from rl_engine.outcomes import Outcome, OutcomeCounts
from rl_engine.text import count_words


async def judge(
    pairs: Pairs, evaluators: Evaluators, settings: EvalSettings, tracker: Tracker
) -> tuple[list[ItemResult], dict[str, Any]]:
    results = await judge_items(pairs, evaluators, settings, tracker)
    return results, aggregate(pairs, results, settings)


async def judge_items(
    pairs: Pairs, evaluators: Evaluators, settings: EvalSettings, tracker: Tracker
) -> list[ItemResult]:
    """Each response against its baseline in both orders (the combined outcome in details)."""
    judge = evaluators.judge
    if judge is None:
        raise ValueError("pairwise needs a pairwise judge (Evaluators.judge)")
    missing = [item.item_id for item, _g in pairs if item.baseline is None]
    if missing:
        raise ValueError(f"pairwise items need a baseline response; missing for {missing[:5]}")
    requests = []
    for item, generated in pairs:
        criteria = "\n".join(criterion_text(c) for c in item.criteria) or None
        baseline = str(item.baseline)
        requests.append(PairRequest(item.prompt, generated.response, baseline, criteria))
        requests.append(PairRequest(item.prompt, baseline, generated.response, criteria))
    judgments = await in_chunks(judge.compare, requests, tracker)
    results = []
    for index, (item, generated) in enumerate(pairs):
        first, second = judgments[2 * index], judgments[2 * index + 1]
        outcome = combine_orders(first.verdict, second.verdict)
        errors = [j.error for j in (first, second) if j.error]
        results.append(
            ItemResult(
                item.item_id, generated.iteration, generated.response,
                count_words(generated.response),
                None if outcome.reward is None else 100.0 * outcome.reward,
                details={
                    "outcome": outcome.value,
                    "system_first": first.verdict.value, "system_second": second.verdict.value,
                    "baseline_words": count_words(str(item.baseline)),
                    "rationales": [first.rationale, second.rationale],
                },
                error=("judgment invalid: " + "; ".join(str(e) for e in errors or ["no verdict"]))
                if not outcome.valid else None,
                judge_latency_s=first.latency_s + second.latency_s,
                judge_attempts=first.attempts + second.attempts,
                judge_usage=first.usage + second.usage,
            )
        )  # fmt: skip
    return results


def aggregate(
    pairs: Pairs, results: Sequence[ItemResult], settings: EvalSettings
) -> dict[str, Any]:
    """Win rates (adjusted and length-controlled) from the stored outcomes."""
    outcomes = [Outcome(r.details["outcome"]) for r in results]
    counts = OutcomeCounts.of(outcomes)
    total = counts.valid
    aggregates: dict[str, Any] = {
        "wins": counts.wins, "ties": counts.ties, "losses": counts.losses,
        "invalid": counts.invalid,
        "win_rate": counts.rate(Outcome.WIN),
        "adjusted_win_rate": counts.adjusted_win_rate,
        "length_controlled_win_rate": None, "length_coefficient": None,
    }  # fmt: skip
    if total:
        controlled = length_controlled_win_rate(
            outcomes,
            [r.produced_words for r in results],
            [r.details["baseline_words"] for r in results],
        )
        aggregates["length_controlled_win_rate"] = controlled.length_controlled
        aggregates["length_coefficient"] = controlled.length_coefficient
    aggregates["score"] = (
        100.0 * aggregates["adjusted_win_rate"] if aggregates["adjusted_win_rate"] is not None
        else None
    )  # fmt: skip
    return aggregates
