"""The pairwise reward: verdict x position mapping, the three position modes, and batches."""

from __future__ import annotations

import asyncio
import doctest
import itertools
import time
from collections.abc import Sequence

import pytest

import rl_engine.reward
from rl_engine.judging import Judgment, OpenAIJudge, PairRequest, Verdict
from rl_engine.reward import (
    PairwiseReward,
    RewardRequest,
    combine_orders,
    pairwise_reward,
)
from rl_engine.testing import ChatCall, FakeOpenAIServer, Fault, transport_to

EXPECTED = {
    (Verdict.A, "first"): 1.0,
    (Verdict.A, "second"): 0.0,
    (Verdict.B, "first"): 0.0,
    (Verdict.B, "second"): 1.0,
    (Verdict.TIE, "first"): 0.5,
    (Verdict.TIE, "second"): 0.5,
    (Verdict.INVALID, "first"): None,
    (Verdict.INVALID, "second"): None,
}


@pytest.mark.parametrize(("verdict", "position"), list(EXPECTED))
def test_it_maps_every_verdict_and_position(verdict: Verdict, position: str) -> None:
    assert pairwise_reward(verdict, position) == EXPECTED[(verdict, position)]  # type: ignore[arg-type]


def test_an_invalid_verdict_is_no_reward_never_a_zero() -> None:
    assert pairwise_reward(Verdict.INVALID, "second") is None


def test_it_rejects_an_unknown_position() -> None:
    with pytest.raises(ValueError, match="policy_position"):
        pairwise_reward(Verdict.A, "left")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="position must be one of"):
        PairwiseReward(ScriptedJudge({}), position="middle")  # type: ignore[arg-type]


def test_the_doctests_hold() -> None:
    result = doctest.testmod(rl_engine.reward)
    assert result.attempted >= 8 and result.failed == 0


class ScriptedJudge:
    """A judge whose verdict per (first, second) pair is given; records what it was asked."""

    name = "scripted"

    def __init__(self, verdicts: dict[tuple[str, str], Verdict]) -> None:
        self.verdicts = verdicts
        self.calls: list[list[PairRequest]] = []

    def _judge(self, request: PairRequest) -> Judgment:
        verdict = self.verdicts.get((request.first, request.second), Verdict.INVALID)
        error = "scripted failure" if verdict is Verdict.INVALID else None
        return Judgment(verdict, "", None, 1, 0.0, error=error, judge=self.name)

    async def compare(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        self.calls.append(list(requests))
        return [self._judge(r) for r in requests]

    def compare_sync(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        return asyncio.run(self.compare(requests))


def request(rollout: str = "rollout", reference: str = "reference") -> RewardRequest:
    return RewardRequest("s1", "Write.", rollout, reference)


@pytest.mark.parametrize("verdict", [Verdict.A, Verdict.B, Verdict.TIE, Verdict.INVALID])
def test_disadvantage_shows_the_reference_first(verdict: Verdict) -> None:
    judge = ScriptedJudge({("reference", "rollout"): verdict})
    (outcome,) = PairwiseReward(judge, "disadvantage").score_sync([request()])
    assert outcome.reward == EXPECTED[(verdict, "second")]
    assert outcome.policy_positions == ["second"]
    assert len(outcome.judgments) == 1 and outcome.judgments[0].verdict is verdict


@pytest.mark.parametrize("verdict", [Verdict.A, Verdict.B, Verdict.TIE, Verdict.INVALID])
def test_advantage_shows_the_rollout_first(verdict: Verdict) -> None:
    judge = ScriptedJudge({("rollout", "reference"): verdict})
    (outcome,) = PairwiseReward(judge, "advantage").score_sync([request()])
    assert outcome.reward == EXPECTED[(verdict, "first")]
    assert outcome.policy_positions == ["first"]


VALID = [Verdict.A, Verdict.B, Verdict.TIE]


@pytest.mark.parametrize(("ref_first", "rollout_first"), list(itertools.product(VALID, VALID)))
def test_both_orders_agree_or_make_a_tie(ref_first: Verdict, rollout_first: Verdict) -> None:
    judge = ScriptedJudge(
        {("reference", "rollout"): ref_first, ("rollout", "reference"): rollout_first}
    )
    (outcome,) = PairwiseReward(judge, "both").score_sync([request()])
    policy_second = pairwise_reward(ref_first, "second")
    policy_first = pairwise_reward(rollout_first, "first")
    expected = policy_second if policy_second == policy_first else 0.5
    assert outcome.reward == expected
    assert outcome.policy_positions == ["second", "first"]
    assert [j.verdict for j in outcome.judgments] == [ref_first, rollout_first]


def test_a_verdict_that_flips_with_the_order_is_a_tie() -> None:
    # The judge always prefers whatever it sees first: position bias, not quality.
    judge = ScriptedJudge(
        {("reference", "rollout"): Verdict.A, ("rollout", "reference"): Verdict.A}
    )
    (outcome,) = PairwiseReward(judge, "both").score_sync([request()])
    assert outcome.reward == 0.5


def test_both_mode_with_one_invalid_order_gives_no_reward_by_default() -> None:
    judge = ScriptedJudge({("rollout", "reference"): Verdict.A})  # the other order fails
    (strict,) = PairwiseReward(judge, "both").score_sync([request()])
    assert strict.reward is None
    assert [j.verdict for j in strict.judgments] == [Verdict.INVALID, Verdict.A]
    (lenient,) = PairwiseReward(judge, "both", partial="single").score_sync([request()])
    assert lenient.reward == 1.0
    assert combine_orders(None, None, partial="single") is None


def test_a_batch_goes_to_the_judge_in_one_call_in_order() -> None:
    verdicts = {}
    for i in range(5):
        verdicts[(f"ref{i}", f"roll{i}")] = [Verdict.A, Verdict.B, Verdict.TIE][i % 3]
        verdicts[(f"roll{i}", f"ref{i}")] = Verdict.A
    judge = ScriptedJudge(verdicts)
    requests = [request(f"roll{i}", f"ref{i}") for i in range(5)]
    outcomes = asyncio.run(PairwiseReward(judge, "both").score(requests))
    assert len(judge.calls) == 1 and len(judge.calls[0]) == 10
    # ref-first verdicts A, B, TIE, A, B -> policy second 0, 1, .5, 0, 1; rollout-first A -> 1.
    assert [o.reward for o in outcomes] == [0.5, 1.0, 0.5, 0.5, 1.0]


def test_all_rollouts_of_a_batch_are_judged_concurrently_over_http() -> None:
    def policy(call: ChatCall) -> str | Fault:
        # The judge prefers the rollout, whichever side it is on.
        a_section = call.user.split("[The start of assistant A's response]")[1]
        return "[[A]]" if a_section.lstrip().startswith("rollout") else "[[B]]"

    with FakeOpenAIServer(latency_s=0.2, capacity=64, policy=policy) as server:
        judge = OpenAIJudge(transport_to(server.base_url, max_concurrency=32, hedge=True))
        reward = PairwiseReward(judge, "both")
        requests = [request(f"rollout {i}", f"reference {i}") for i in range(16)]
        started = time.perf_counter()
        outcomes = reward.score_sync(requests)
        elapsed = time.perf_counter() - started
        judge.close()
        stats = server.stats()
    assert [o.reward for o in outcomes] == [1.0] * 16
    assert stats.requests == 32 and stats.max_in_flight == 32
    assert elapsed < 1.0  # 32 requests of 0.2 s each: 6.4 s one after another
