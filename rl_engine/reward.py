"""The pairwise comparison reward of Writing-RL: a rollout is judged against its sample's
current reference, and the verdict becomes the reward.

r = 1.0 when the rollout wins, 0.5 for a tie, 0.0 when it loses, and None when the judge gave
no verdict. None means "no reward for this rollout" — trainers exclude it from the advantage
(TRL allows None) — and is never a loss in disguise: the authors' code turned a failed judge
call into a loss, which teaches the policy nothing true.

Position modes (LLM judges favour the response shown first):
- ``"disadvantage"`` (the paper's default): Judge(reference, rollout) — the rollout is second.
- ``"advantage"``: Judge(rollout, reference) — the rollout is first.
- ``"both"``: both orders, judged concurrently. When they agree, that is the reward; when
  the verdict changes with the order it is a tie (0.5), as MT-Bench does. When one order is
  INVALID the reward is None by default (``partial="none"``): a single order carries exactly
  the position bias this mode exists to cancel, so it is not the same measurement. With
  ``partial="single"`` the valid order's reward is used instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rl_engine.judging import Judge, Judgment, PairRequest, Score, Usage, Verdict
from rl_engine.judging.scorer import PointwiseScorer
from rl_engine.outcomes import Outcome, PolicyPosition
from rl_engine.outcomes import combine_orders as combine_outcomes

__all__ = [
    "PairwiseReward",
    "PointwiseReward",
    "PolicyPosition",
    "Position",
    "RewardOutcome",
    "RewardRequest",
    "combine_orders",
    "pairwise_reward",
]

Position = Literal["disadvantage", "advantage", "both"]
_POSITIONS = ("disadvantage", "advantage", "both")


def pairwise_reward(verdict: Verdict, policy_position: PolicyPosition) -> float | None:
    """The reward of the policy's response given the judge's ``verdict``, when the policy's
    response was shown ``policy_position`` ("first" = A, "second" = B): the reward of
    :meth:`Outcome.from_verdict <rl_engine.outcomes.Outcome.from_verdict>`.

    >>> pairwise_reward(Verdict.B, "second")
    1.0
    >>> pairwise_reward(Verdict.A, "second")
    0.0
    >>> pairwise_reward(Verdict.A, "first")
    1.0
    >>> pairwise_reward(Verdict.TIE, "first")
    0.5
    >>> pairwise_reward(Verdict.INVALID, "first") is None
    True
    """
    return Outcome.from_verdict(verdict, policy_position).reward


def combine_orders(
    policy_second: float | None,
    policy_first: float | None,
    partial: Literal["none", "single"] = "none",
) -> float | None:
    """The ``"both"``-mode reward from the rewards of the two orders (the rule is
    :func:`rl_engine.outcomes.combine_orders`; this reads and gives rewards).

    >>> combine_orders(1.0, 1.0), combine_orders(0.0, 0.0), combine_orders(0.5, 0.5)
    (1.0, 0.0, 0.5)
    >>> combine_orders(1.0, 0.0)  # the verdict flips with the order: a tie
    0.5
    >>> combine_orders(None, 1.0) is None, combine_orders(None, 1.0, partial="single")
    (True, 1.0)
    """
    return combine_outcomes(
        Outcome.from_reward(policy_second), Outcome.from_reward(policy_first), partial
    ).reward


@dataclass(frozen=True)
class RewardRequest:
    """One rollout to reward: the policy's ``rollout`` for ``instruction``, to be compared
    with the sample's current ``reference``."""

    sample_id: str
    instruction: str
    rollout: str
    reference: str
    criteria: str | None = None


@dataclass
class RewardOutcome:
    """The reward (None = no reward) and every judgment behind it, with where the policy's
    response was shown in each (``policy_positions[i]`` belongs to ``judgments[i]``).

    ``outcome`` is the rollout's standing against the reference (WIN / TIE / LOSS /
    INVALID), which drives the curriculum and the win/tie/loss rates. For the pairwise reward
    the reward is the outcome's; for the pointwise reward the outcome comes from comparing the
    two scores while ``reward`` is the rollout's normalized score.
    """

    reward: float | None
    judgments: list[Judgment]
    policy_positions: list[PolicyPosition]
    outcome: Outcome = Outcome.INVALID

    @property
    def comparison(self) -> float | None:
        """The outcome as a pairwise reward: 1.0 win, 0.5 tie, 0.0 loss, None unknown."""
        return self.outcome.reward


class PairwiseReward:
    """Rewards rollouts by comparing them with their references through ``judge``.

    All the rollouts of a batch (and both orders, in ``"both"`` mode) go to the judge in one
    ``compare`` call, so they are judged concurrently.
    """

    def __init__(
        self,
        judge: Judge,
        position: Position = "disadvantage",
        *,
        partial: Literal["none", "single"] = "none",
    ) -> None:
        if position not in _POSITIONS:
            raise ValueError(f"position must be one of {', '.join(_POSITIONS)}; got {position!r}")
        if partial not in ("none", "single"):
            raise ValueError(f"partial must be 'none' or 'single'; got {partial!r}")
        self.judge = judge
        self.position: Position = position
        self.partial: Literal["none", "single"] = partial

    def _orders(self) -> list[PolicyPosition]:
        if self.position == "disadvantage":
            return ["second"]
        if self.position == "advantage":
            return ["first"]
        return ["second", "first"]

    def pair_requests(self, requests: Sequence[RewardRequest]) -> list[PairRequest]:
        """The judge's questions for ``requests``, ``len(orders)`` per request, in order."""
        pairs: list[PairRequest] = []
        for request in requests:
            for order in self._orders():
                first, second = (
                    (request.reference, request.rollout)
                    if order == "second"
                    else (request.rollout, request.reference)
                )
                pairs.append(PairRequest(request.instruction, first, second, request.criteria))
        return pairs

    def outcomes(
        self, requests: Sequence[RewardRequest], judgments: Sequence[Judgment]
    ) -> list[RewardOutcome]:
        """Map judgments (from :meth:`pair_requests`' order) to one outcome per request."""
        orders = self._orders()
        if len(judgments) != len(requests) * len(orders):
            raise ValueError(
                f"expected {len(requests) * len(orders)} judgments, got {len(judgments)}"
            )
        results: list[RewardOutcome] = []
        for index in range(len(requests)):
            own = list(judgments[index * len(orders) : (index + 1) * len(orders)])
            per_order = [
                Outcome.from_verdict(j.verdict, order) for j, order in zip(own, orders, strict=True)
            ]
            if len(per_order) == 1:
                outcome = per_order[0]
            else:
                outcome = combine_outcomes(per_order[0], per_order[1], self.partial)
            results.append(RewardOutcome(outcome.reward, own, list(orders), outcome=outcome))
        return results

    async def score(self, requests: Sequence[RewardRequest]) -> list[RewardOutcome]:
        """One outcome per request, in order; a failed judgment gives reward None."""
        judgments = await self.judge.compare(self.pair_requests(requests))
        return self.outcomes(requests, judgments)

    def score_sync(self, requests: Sequence[RewardRequest]) -> list[RewardOutcome]:
        """Blocking :meth:`score`."""
        judgments = self.judge.compare_sync(self.pair_requests(requests))
        return self.outcomes(requests, judgments)


def score_comparison(rollout: int | None, reference: int | None) -> float | None:
    """The rollout's standing from two pointwise scores: 1.0 higher, 0.5 equal, 0.0 lower.

    >>> score_comparison(7, 5), score_comparison(5, 5), score_comparison(4, 5)
    (1.0, 0.5, 0.0)
    >>> score_comparison(None, 5) is None
    True
    """
    return Outcome.from_scores(rollout, reference).reward


class PointwiseReward:
    """The paper's pointwise baseline: the reward is the rollout's own 1..10 score, mapped to
    0..1 as ``(score - 1) / 9`` (None when the scorer gave no valid score).

    The curriculum still needs a standing against the current reference, so the reference is
    scored too (once per distinct text and call) and :attr:`RewardOutcome.outcome` says
    whether the rollout scored higher, equal or lower. Each outcome carries one synthetic
    :class:`Judgment` (the rollout shown second) recording both scores.
    """

    def __init__(self, scorer: PointwiseScorer) -> None:
        self.scorer = scorer

    def _requests(
        self, requests: Sequence[RewardRequest]
    ) -> tuple[list[tuple[str, str, str | None]], dict[tuple[str, str, str | None], int]]:
        graded: list[tuple[str, str, str | None]] = []
        index: dict[tuple[str, str, str | None], int] = {}
        for request in requests:
            for text in (request.rollout, request.reference):
                key = (request.instruction, text, request.criteria)
                if key not in index:
                    index[key] = len(graded)
                    graded.append(key)
        return graded, index

    def _outcomes(
        self,
        requests: Sequence[RewardRequest],
        index: dict[tuple[str, str, str | None], int],
        scores: Sequence[Score],
    ) -> list[RewardOutcome]:
        outcomes: list[RewardOutcome] = []
        for request in requests:
            own = scores[index[(request.instruction, request.rollout, request.criteria)]]
            ref = scores[index[(request.instruction, request.reference, request.criteria)]]
            outcome = Outcome.from_scores(own.value, ref.value)
            reward = None if own.value is None else (own.value - 1) / 9
            # The synthetic judgment shows the rollout second.
            verdict = outcome.verdict("second")
            errors = [s.error for s in (own, ref) if s.error]
            judgment = Judgment(
                verdict=verdict,
                rationale=(
                    f"pointwise: rollout {own.value}/10 vs reference {ref.value}/10. {own.reason}"
                ).strip(),
                raw={"rollout": own.raw, "reference": ref.raw},
                attempts=own.attempts + ref.attempts,
                latency_s=max(own.latency_s, ref.latency_s),
                error="; ".join(errors) or None,
                usage=Usage(
                    own.usage.prompt_tokens + ref.usage.prompt_tokens,
                    own.usage.completion_tokens + ref.usage.completion_tokens,
                ),
                judge=str(getattr(self.scorer, "name", type(self.scorer).__name__)),
            )
            outcomes.append(RewardOutcome(reward, [judgment], ["second"], outcome=outcome))
        return outcomes

    async def score(self, requests: Sequence[RewardRequest]) -> list[RewardOutcome]:
        """One outcome per request, in order; a failed score gives reward None."""
        graded, index = self._requests(requests)
        scores = await self.scorer.score_many(graded)
        return self._outcomes(requests, index, scores)

    def score_sync(self, requests: Sequence[RewardRequest]) -> list[RewardOutcome]:
        """Blocking :meth:`score`."""
        graded, index = self._requests(requests)
        scores = self.scorer.score_many_sync(graded)
        return self._outcomes(requests, index, scores)
