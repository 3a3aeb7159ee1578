"""Judge check: is a judge worth training on?

A judge is asked about pairs whose better side is known (two references of one instruction
from different quality tiers), each pair in both orders: the higher tier first (as A), then
second (as B). From those answers the check reports

- **parse rate**: judgments that gave a verdict (A, B or tie) rather than INVALID;
- **position consistency**: pairs whose two orders (both parsed) named the same winner — a
  judge that always answers "A" names the better text once and the worse text once, so it
  scores 0 here however well it parses;
- **A-preference rate**: among parsed verdicts that were not ties, the share that chose A
  (0.5 for an unbiased judge on this balanced design);
- **tie rate**: ties among parsed verdicts;
- **tier agreement**: among parsed verdicts that were not ties, the share that chose the
  higher tier;
- latency, attempts and tokens per judgment.

A check *passes* when parse rate and position consistency reach the thresholds. Everything
here is pure: the caller picks the pairs (:func:`sample_tier_pairs` does it from references)
and stores the report.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rl_engine.judging.types import Judge, Judgment, PairRequest
from rl_engine.judging.verdict import Verdict

__all__ = [
    "CheckPair",
    "JudgeCheckReport",
    "JudgeCheckThresholds",
    "check_judge",
    "sample_tier_pairs",
]

# Errors kept in a report (the first ones; the count of all is in ``invalid``).
MAX_ERRORS = 5


@dataclass(frozen=True)
class CheckPair:
    """Two texts for one instruction where ``better`` is from a higher tier than ``worse``."""

    instruction: str
    better: str
    worse: str
    criteria: str | None = None
    better_tier: int | None = None
    worse_tier: int | None = None
    key: str = ""  # where the pair came from (an instruction id), for the report


@dataclass(frozen=True)
class JudgeCheckThresholds:
    """The least a judge must reach for a run to train on it (shares in [0, 1])."""

    min_parse_rate: float = 0.8
    min_position_consistency: float = 0.6

    def __post_init__(self) -> None:
        for name in ("min_parse_rate", "min_position_consistency"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(
                    f"JudgeCheckThresholds.{name} must be a share in [0, 1]; got {value!r}"
                )


@dataclass
class JudgeCheckReport:
    """What :func:`check_judge` found. Rates are None when nothing was there to measure
    (no parsed verdict, no pair parsed in both orders); a None rate never passes."""

    judge: str
    pairs: int
    judgments: int
    parsed: int
    parse_rate: float | None
    pairs_both_parsed: int
    consistent: int
    position_consistency: float | None
    a_preference_rate: float | None
    tie_rate: float | None
    tier_agreement: float | None
    latency_mean_s: float | None
    latency_p95_s: float | None
    attempts_per_judgment: float | None
    prompt_tokens_per_judgment: float | None
    completion_tokens_per_judgment: float | None
    prompt_tokens: int
    completion_tokens: int
    wall_s: float
    thresholds: JudgeCheckThresholds
    passed: bool
    reasons: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        """One line: the rates and, for a failed check, why."""

        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{100 * value:.0f}%"

        line = (
            f"judge {self.judge}: {self.pairs} pairs x 2 orders; parsed {pct(self.parse_rate)}, "
            f"position-consistent {pct(self.position_consistency)}, "
            f"A preferred {pct(self.a_preference_rate)}, ties {pct(self.tie_rate)}, "
            f"agrees with tiers {pct(self.tier_agreement)}"
        )
        if self.passed:
            return line + " - passed"
        return line + " - FAILED: " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> JudgeCheckReport:
        values = dict(payload)
        values["thresholds"] = JudgeCheckThresholds(**values.get("thresholds", {}))
        return cls(**values)


def sample_tier_pairs(
    groups: Sequence[Sequence[tuple[int, str]]],
    *,
    instructions: Sequence[str],
    criteria: Sequence[str | None] | None = None,
    keys: Sequence[str] | None = None,
    n: int = 8,
    seed: int = 0,
) -> list[CheckPair]:
    """Up to ``n`` pairs, at most one per instruction, drawn with ``seed``.

    ``groups[i]`` lists instruction ``i``'s references as (tier, text); instructions with
    fewer than two distinct tiers are skipped. Each chosen instruction gives a pair of two
    random distinct tiers, so the sample spans near and far tiers.
    """
    if n < 1:
        raise ValueError(f"a judge check needs at least 1 pair; got n={n}")
    rng = random.Random(seed)
    order = list(range(len(groups)))
    rng.shuffle(order)
    pairs: list[CheckPair] = []
    for index in order:
        by_tier: dict[int, str] = {}
        for tier, text in groups[index]:
            by_tier.setdefault(int(tier), text)
        if len(by_tier) < 2:
            continue
        low, high = sorted(rng.sample(sorted(by_tier), 2))
        pairs.append(
            CheckPair(
                instruction=instructions[index],
                better=by_tier[high],
                worse=by_tier[low],
                criteria=criteria[index] if criteria is not None else None,
                better_tier=high,
                worse_tier=low,
                key=keys[index] if keys is not None else str(index),
            )
        )
        if len(pairs) >= n:
            break
    return pairs


def _winner(verdict: Verdict, better_is_a: bool) -> str | None:
    """'better', 'worse' or 'tie' for a parsed verdict; None for INVALID."""
    if verdict is Verdict.TIE:
        return "tie"
    if verdict is Verdict.A:
        return "better" if better_is_a else "worse"
    if verdict is Verdict.B:
        return "worse" if better_is_a else "better"
    return None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def check_judge(
    judge: Judge,
    pairs: Sequence[CheckPair],
    *,
    thresholds: JudgeCheckThresholds | None = None,
) -> JudgeCheckReport:
    """Judge every pair in both orders (one batch) and measure the judge; see the module."""
    if not pairs:
        raise ValueError(
            "a judge check needs at least one pair of references from two different tiers"
        )
    thresholds = thresholds or JudgeCheckThresholds()
    requests: list[PairRequest] = []
    for pair in pairs:
        requests.append(PairRequest(pair.instruction, pair.better, pair.worse, pair.criteria))
        requests.append(PairRequest(pair.instruction, pair.worse, pair.better, pair.criteria))
    started = time.monotonic()
    judgments: list[Judgment] = judge.compare_sync(requests)
    wall_s = time.monotonic() - started
    if len(judgments) != len(requests):
        raise RuntimeError(
            f"judge {judge.name!r} answered {len(judgments)} of {len(requests)} requests"
        )

    parsed = a_chosen = ties = decided = agree = both = consistent = 0
    errors: list[str] = []
    rows: list[dict[str, Any]] = []
    for index, pair in enumerate(pairs):
        forward, backward = judgments[2 * index], judgments[2 * index + 1]
        winners = (_winner(forward.verdict, True), _winner(backward.verdict, False))
        for judgment, winner in zip((forward, backward), winners, strict=True):
            if winner is None:
                if judgment.error and len(errors) < MAX_ERRORS:
                    errors.append(judgment.error[:500])
                continue
            parsed += 1
            if winner == "tie":
                ties += 1
                continue
            decided += 1
            a_chosen += judgment.verdict is Verdict.A
            agree += winner == "better"
        same = None
        if None not in winners:
            both += 1
            same = winners[0] == winners[1]
            consistent += same
        rows.append(
            {
                "key": pair.key,
                "better_tier": pair.better_tier,
                "worse_tier": pair.worse_tier,
                "better_first": forward.verdict.value,
                "better_second": backward.verdict.value,
                "consistent": same,
            }
        )

    latencies = sorted(j.latency_s for j in judgments)
    counted = [j for j in judgments if not j.cached]
    prompt_tokens = sum(j.usage.prompt_tokens for j in judgments)
    completion_tokens = sum(j.usage.completion_tokens for j in judgments)
    total = len(judgments)
    parse_rate = _share(parsed, total)
    consistency = _share(consistent, both)
    reasons: list[str] = []
    if parse_rate is None or parse_rate < thresholds.min_parse_rate:
        reasons.append(
            f"parse rate {_pct(parse_rate)} is under the minimum {_pct(thresholds.min_parse_rate)}"
            + (f" (first error: {errors[0][:200]})" if errors else "")
        )
    if consistency is None or consistency < thresholds.min_position_consistency:
        reasons.append(
            f"position consistency {_pct(consistency)} is under the minimum "
            f"{_pct(thresholds.min_position_consistency)}"
            + ("" if both else " (no pair got a verdict in both orders)")
        )
    return JudgeCheckReport(
        judge=judge.name,
        pairs=len(pairs),
        judgments=total,
        parsed=parsed,
        parse_rate=parse_rate,
        pairs_both_parsed=both,
        consistent=consistent,
        position_consistency=consistency,
        a_preference_rate=_share(a_chosen, decided),
        tie_rate=_share(ties, parsed),
        tier_agreement=_share(agree, decided),
        latency_mean_s=_mean(latencies),
        latency_p95_s=latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        if latencies
        else None,
        attempts_per_judgment=_mean([float(j.attempts) for j in counted]),
        prompt_tokens_per_judgment=_share(prompt_tokens, total),
        completion_tokens_per_judgment=_share(completion_tokens, total),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        wall_s=wall_s,
        thresholds=thresholds,
        passed=not reasons,
        reasons=reasons,
        errors=errors,
        rows=rows,
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"
