"""A deterministic stand-in for a judge, for offline demos and tests. NOT an LLM judge.

It knows two things about writing: whether a response meets the length the instruction asks
for (LongBench-Write's length score), and whether it repeats itself (word 4-gram repetition).
It cannot tell a good story from a bad one; use it where no judge endpoint exists, never to
report quality.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from rl_engine.judging.types import Judgment, PairRequest, Score
from rl_engine.judging.verdict import Verdict
from rl_engine.text import count_words, length_score, repetition_rate, required_length

__all__ = ["HeuristicJudge", "HeuristicScorer"]


class HeuristicJudge:
    """Scores each response as ``length_weight * S_l + repetition_weight * 100 * (1 - r)``
    and prefers the higher score; a difference within ``tie_margin`` points is a TIE.

    ``S_l`` (0..100) is LongBench-Write's length score against the length the instruction
    states ("800 words", "a 5000-word story", "2000字"; see :func:`rl_engine.text.required_length`);
    when the instruction states none the length term is left out. ``r`` is the share of
    repeated word ``ngram``-grams. Same inputs, same verdict: there is no randomness.
    """

    def __init__(
        self,
        tie_margin: float = 2.0,
        *,
        length_weight: float = 1.0,
        repetition_weight: float = 1.0,
        ngram: int = 4,
    ) -> None:
        if tie_margin < 0:
            raise ValueError(f"tie_margin cannot be negative, got {tie_margin}")
        self.tie_margin = tie_margin
        self.length_weight = length_weight
        self.repetition_weight = repetition_weight
        self.ngram = ngram
        self.name = "heuristic"

    @property
    def identity(self) -> str:
        return (
            f"heuristic|margin={self.tie_margin}|length={self.length_weight}|"
            f"repetition={self.repetition_weight}|n={self.ngram}"
        )

    def template_identity(self, request: PairRequest) -> str:
        return "heuristic-v1"

    def score(self, instruction: str, response: str) -> dict[str, float | int | None]:
        """The parts of one response's score (kept in a judgment's ``raw``)."""
        required = required_length(instruction)
        words = count_words(response)
        repetition = repetition_rate(response, n=self.ngram)
        length = length_score(required, words) if required else None
        total = self.repetition_weight * 100.0 * (1.0 - repetition)
        if length is not None:
            total += self.length_weight * length
        return {
            "required_words": required,
            "words": words,
            "length_score": length,
            "repetition_rate": repetition,
            "score": total,
        }

    def judge_one(self, request: PairRequest) -> Judgment:
        started = time.perf_counter()
        first = self.score(request.instruction, request.first)
        second = self.score(request.instruction, request.second)
        difference = float(first["score"] or 0.0) - float(second["score"] or 0.0)
        if abs(difference) <= self.tie_margin:
            verdict = Verdict.TIE
        else:
            verdict = Verdict.A if difference > 0 else Verdict.B
        rationale = (
            f"heuristic (not an LLM judge): A scores {first['score']:.1f}, "
            f"B scores {second['score']:.1f} (length score vs "
            f"{first['required_words'] or 'no stated'} words, and {self.ngram}-gram repetition); "
            f"tie margin {self.tie_margin:g}"
        )
        return Judgment(
            verdict=verdict,
            rationale=rationale,
            raw={"A": first, "B": second},
            attempts=1,
            latency_s=time.perf_counter() - started,
            judge=self.name,
        )

    async def compare(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        # Pure CPU work; a thread keeps a caller's event loop responsive on big batches.
        return await asyncio.to_thread(self.compare_sync, requests)

    def compare_sync(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        return [self.judge_one(request) for request in requests]


class HeuristicScorer:
    """Pointwise 1..10 grades from :class:`HeuristicJudge`'s length and repetition score.

    NOT an LLM grade: an offline stand-in for demos and tests, with the same interface as
    :class:`~rl_engine.judging.scorer.OpenAIScorer`.
    """

    name = "heuristic-scorer"

    def __init__(self, judge: HeuristicJudge | None = None) -> None:
        self.judge = judge or HeuristicJudge()

    def grade(self, instruction: str, response: str) -> Score:
        parts = self.judge.score(instruction, response)
        # The best possible total: repetition term plus, when a length is asked for, S_l.
        best = 100.0 * self.judge.repetition_weight
        if parts["length_score"] is not None:
            best += 100.0 * self.judge.length_weight
        value = round(1 + 9 * float(parts["score"] or 0.0) / best) if best else 1
        return Score(value=value, reason="heuristic", raw=parts, attempts=1, latency_s=0.0)

    async def score(self, instruction: str, response: str, criteria: str | None = None) -> Score:
        return self.grade(instruction, response)

    async def score_many(self, requests: Sequence[tuple[str, str, str | None]]) -> list[Score]:
        return [self.grade(instruction, response) for instruction, response, _ in requests]

    def score_sync(self, instruction: str, response: str, criteria: str | None = None) -> Score:
        return self.grade(instruction, response)

    def score_many_sync(self, requests: Sequence[tuple[str, str, str | None]]) -> list[Score]:
        return [self.grade(instruction, response) for instruction, response, _ in requests]
