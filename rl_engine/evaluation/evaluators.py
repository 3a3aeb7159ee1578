"""Build the judges an evaluation needs from one :class:`~rl_engine.judging.JudgeSpec`.

``make_evaluators(spec)`` gives :class:`~rl_engine.evaluation.runner.Evaluators` of one kind:

* ``openai``: the judging package's pairwise judge and pointwise scorer for the endpoint,
  and an :class:`EndpointGrader` on the same endpoint for rubrics;
* ``local``: a local model (``spec.model`` is a policy name or HF checkpoint path) as a
  :class:`LocalGrader`, the judging package's local pairwise judge, and WritingBench criteria
  through the judging package's local scorer when it has one;
* ``heuristic``: deterministic stand-ins, not LLM judges (offline demos and tests).

The spec names a declared endpoint; its address and key come from the registry when the
evaluators are built, never from the spec.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from rl_engine.evaluation.grading import (
    EndpointGrader,
    HeuristicGrader,
    LocalGrader,
    RubricGrader,
    RubricRequest,
    criterion_rubric,
)
from rl_engine.evaluation.runner import Evaluators
from rl_engine.judging._aio import run_sync
from rl_engine.judging.endpoints import EndpointRegistry, default_registry
from rl_engine.judging.factory import make_judge, make_scorer
from rl_engine.judging.scorer import ScoreRequest
from rl_engine.judging.transport import build_transport
from rl_engine.judging.types import JudgeSpec, Score

__all__ = ["GraderScorer", "make_evaluators"]


class GraderScorer:
    """A pointwise 1-10 scorer made from a rubric grader: the criterion becomes a one-dimension
    rubric. Lets WritingBench run on any grader (heuristic, endpoint)."""

    def __init__(self, grader: RubricGrader) -> None:
        self.grader = grader
        self.name = f"rubric:{grader.name}"

    async def score(self, instruction: str, response: str, criteria: str | None = None) -> Score:
        name, _, description = (criteria or "General quality").partition(": ")
        request = RubricRequest(instruction, response, criterion_rubric(name, description))
        started = time.perf_counter()
        (grade,) = await self.grader.grade([request])
        value = grade.values["score"] if grade.values is not None else None
        return Score(
            value=value,
            reason=grade.reason,
            raw=grade.raw,
            attempts=grade.attempts,
            latency_s=grade.latency_s or time.perf_counter() - started,
            error=grade.error,
            usage=grade.usage,
        )

    async def score_many(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        return list(await asyncio.gather(*(self.score(*request) for request in requests)))

    def score_many_sync(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        return run_sync(self.score_many(requests))


def make_evaluators(
    spec: JudgeSpec,
    model: Any = None,
    tokenizer: Any = None,
    registry: EndpointRegistry | None = None,
) -> Evaluators:
    """Evaluators for ``spec``. For a ``local`` spec an already-loaded ``model`` and
    ``tokenizer`` may be passed, so the judge model is loaded once for all three roles."""
    resolved = (registry or default_registry()).resolve(spec)
    if resolved.kind == "openai":
        grader: RubricGrader = EndpointGrader(
            build_transport(spec, "text", registry=registry),
            max_reasks=spec.max_reasks,
            name=f"openai:{resolved.model}",
        )
        return Evaluators(
            scorer=make_scorer(spec, registry),
            grader=grader,
            judge=make_judge(spec, registry),
        )
    if resolved.kind == "local":
        from rl_engine.judging.local_judge import LocalJudge

        if model is None or tokenizer is None:
            from rl_engine.models import load_policy

            model, tokenizer = load_policy(resolved.model)
        name = f"local:{resolved.model}"
        grader = LocalGrader(model, tokenizer, batch_size=spec.batch_size, name=name)
        judge = LocalJudge(
            model,
            tokenizer,
            batch_size=spec.batch_size,
            tie_margin=0.1 if spec.tie_margin is None else spec.tie_margin,
            name=name,
        )
        # The local grader reads single-token scale values, so WritingBench's 1-10 criteria
        # (10 is two tokens) fail with a message naming the endpoint grader instead.
        return Evaluators(scorer=GraderScorer(grader), grader=grader, judge=judge)
    grader = HeuristicGrader()
    return Evaluators(scorer=GraderScorer(grader), grader=grader, judge=make_judge(spec, registry))
