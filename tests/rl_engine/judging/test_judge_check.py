"""The judge check measures parse rate, position consistency, biases and cost per judgment."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from rl_engine.judging import HeuristicJudge, Judgment, PairRequest, Usage, Verdict
from rl_engine.judging.check import (
    CheckPair,
    JudgeCheckReport,
    JudgeCheckThresholds,
    check_judge,
    sample_tier_pairs,
)


class FixedJudge:
    """Answers every request with the same verdict (or by a rule), with token usage."""

    def __init__(self, rule) -> None:
        self.rule = rule
        self.name = "fixed"
        self.seen: list[PairRequest] = []

    def compare_sync(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        self.seen.extend(requests)
        out = []
        for request in requests:
            verdict = self.rule(request)
            error = "no [[A]]/[[B]]/[[C]] tag in the answer" if verdict is Verdict.INVALID else None
            out.append(
                Judgment(verdict, "", None, attempts=2, latency_s=0.5, error=error,
                         usage=Usage(100, 10), judge=self.name)
            )  # fmt: skip
        return out

    async def compare(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        return self.compare_sync(requests)


def pairs(n: int = 6) -> list[CheckPair]:
    return [
        CheckPair(f"task {i}", better=f"good {i}", worse=f"bad {i}", better_tier=2, worse_tier=0)
        for i in range(n)
    ]


def knows_better(request: PairRequest) -> Verdict:
    return Verdict.A if request.first.startswith("good") else Verdict.B


def test_a_judge_that_always_answers_a_parses_but_fails_on_position() -> None:
    judge = FixedJudge(lambda request: Verdict.A)
    report = check_judge(judge, pairs())
    assert report.judgments == 12 and report.parse_rate == 1.0
    assert report.position_consistency == 0.0
    assert report.a_preference_rate == 1.0
    assert report.tier_agreement == 0.5
    assert not report.passed
    assert any("position consistency 0%" in reason for reason in report.reasons)
    # Both orders were asked: the better text once as A, once as B.
    assert [r.first.split()[0] for r in judge.seen[:2]] == ["good", "bad"]


def test_a_judge_that_knows_better_passes_with_full_agreement() -> None:
    report = check_judge(FixedJudge(knows_better), pairs())
    assert report.passed and report.reasons == []
    assert report.position_consistency == 1.0
    assert report.a_preference_rate == 0.5
    assert report.tier_agreement == 1.0 and report.tie_rate == 0.0
    assert report.prompt_tokens_per_judgment == 100 and report.completion_tokens == 120
    assert report.attempts_per_judgment == 2 and report.latency_mean_s == 0.5


def test_a_judge_without_verdicts_fails_on_parse_rate_with_the_error() -> None:
    report = check_judge(FixedJudge(lambda request: Verdict.INVALID), pairs())
    assert report.parse_rate == 0.0 and report.position_consistency is None
    assert report.a_preference_rate is None and report.tie_rate is None
    assert not report.passed
    assert "parse rate 0%" in report.reasons[0] and "no [[A]]" in report.reasons[0]
    assert "no pair got a verdict in both orders" in report.reasons[1]
    assert "FAILED" in report.summary()


def test_thresholds_decide_and_the_report_round_trips() -> None:
    # Half the pairs consistent: passes at 0.5, fails at 0.6.
    def half(request: PairRequest) -> Verdict:
        index = int(request.instruction.split()[1])
        return knows_better(request) if index % 2 else Verdict.A

    loose = check_judge(FixedJudge(half), pairs(), thresholds=JudgeCheckThresholds(0.8, 0.5))
    strict = check_judge(FixedJudge(half), pairs(), thresholds=JudgeCheckThresholds(0.8, 0.6))
    assert loose.position_consistency == 0.5 and loose.passed and not strict.passed
    again = JudgeCheckReport.from_dict(strict.to_dict())
    assert again == strict
    with pytest.raises(ValueError, match="min_parse_rate"):
        JudgeCheckThresholds(min_parse_rate=1.5)


def test_the_heuristic_judge_passes_on_references_that_differ_in_length() -> None:
    instruction = "Write a 200-word story about a lighthouse."
    good = " ".join(f"word{i}" for i in range(200))
    bad = "the sea the sea the sea the sea " * 3
    report = check_judge(HeuristicJudge(), [CheckPair(instruction, good, bad, None, 1, 0)] * 3)
    assert report.passed and report.tier_agreement == 1.0 and report.position_consistency == 1.0


def test_sampling_takes_one_pair_of_distinct_tiers_per_instruction() -> None:
    groups = [[(0, "a0"), (1, "a1"), (2, "a2")], [(0, "b0")], [(1, "c1"), (3, "c3")]]
    chosen = sample_tier_pairs(groups, instructions=["a", "b", "c"], keys=["1", "2", "3"], n=5)
    assert sorted(p.key for p in chosen) == ["1", "3"]
    for pair in chosen:
        assert pair.better_tier > pair.worse_tier
        assert pair.better.endswith(str(pair.better_tier))
    again = sample_tier_pairs(groups, instructions=["a", "b", "c"], keys=["1", "2", "3"], n=5)
    assert chosen == again
    with pytest.raises(ValueError, match="at least one pair"):
        check_judge(FixedJudge(knows_better), [])
