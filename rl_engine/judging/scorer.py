"""Pointwise grading (1-10) of one response, on the same transport as the pairwise judge.

Used by margin-aware data selection (a score per writer per instruction) and by
WritingBench-style evaluation (a score per criterion). The grader answers JSON
``{"score": <1..10>, "reason": "..."}``; anything else is followed up a bounded number of
times, and after the last try the :class:`Score` has ``value=None`` and the reason in
``error`` — never a made-up number.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Sequence
from typing import Any, Protocol

from rl_engine.judging._aio import BackgroundLoop
from rl_engine.judging.endpoints import EndpointRegistry
from rl_engine.judging.prompts import DEFAULT_POINTWISE, PointwiseTemplate
from rl_engine.judging.transport import ChatTransport, build_transport
from rl_engine.judging.types import JudgeSpec, Score, Usage

__all__ = ["OpenAIScorer", "PointwiseScorer", "ScoreRequest", "parse_score"]

ScoreRequest = tuple[str, str, str | None]  # (instruction, response, criteria)

REASK_MESSAGE = (
    'Your answer was not valid. Reply with JSON only: {"score": <integer from 1 to 10>, '
    '"reason": "<one or two sentences>"}'
)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_score(text: str | None) -> tuple[int | None, str, str | None]:
    """``(score, reason, error)`` from a grader's answer; ``score`` is None with ``error``
    saying why when the answer is not JSON with an integer score from 1 to 10.

    >>> parse_score('{"score": 7, "reason": "Vivid."}')
    (7, 'Vivid.', None)
    >>> parse_score('```json\\n{"score": 9.0, "reason": "x"}\\n```')[0]
    9
    >>> parse_score('{"score": 11, "reason": "x"}')[2]
    'score 11 is outside 1..10'
    """
    if not text:
        return None, "", "empty answer"
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    candidates += [m.group(0) for m in _OBJECT.finditer(text)]
    payload: Any = None
    for candidate in candidates:
        try:
            payload = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(payload, dict):
            break
    if not isinstance(payload, dict):
        return None, "", f"no JSON object in the answer: {text[:200]!r}"
    raw_score = payload.get("score")
    reason = str(payload.get("reason", ""))
    if isinstance(raw_score, bool) or not isinstance(raw_score, int | float):
        return None, reason, f"'score' must be a number, got {raw_score!r}"
    if isinstance(raw_score, float) and not raw_score.is_integer():
        return None, reason, f"'score' must be an integer, got {raw_score!r}"
    score = int(raw_score)
    if not 1 <= score <= 10:
        return None, reason, f"score {score} is outside 1..10"
    return score, reason, None


class PointwiseScorer(Protocol):
    """Anything that grades one response 1..10 (None with an error when it cannot)."""

    name: str

    async def score(
        self, instruction: str, response: str, criteria: str | None = None
    ) -> Score: ...

    async def score_many(self, requests: Sequence[ScoreRequest]) -> list[Score]: ...

    def score_many_sync(self, requests: Sequence[ScoreRequest]) -> list[Score]: ...


class OpenAIScorer:
    """A pointwise grader behind an OpenAI-compatible endpoint (same retry policy and
    concurrency bound as :class:`~rl_engine.judging.openai_judge.OpenAIJudge`)."""

    def __init__(
        self,
        transport: ChatTransport,
        *,
        max_reasks: int = 2,
        template: PointwiseTemplate = DEFAULT_POINTWISE,
    ) -> None:
        if max_reasks < 0:
            raise ValueError(f"max_reasks cannot be negative, got {max_reasks}")
        self.transport = transport
        self.max_reasks = max_reasks
        self.template = template
        self.name = f"openai-scorer:{transport.model}"
        self._background = BackgroundLoop(f"scorer-{transport.model}")

    @classmethod
    def from_spec(
        cls, spec: JudgeSpec, *, registry: EndpointRegistry | None = None
    ) -> OpenAIScorer:
        """The grader ``spec`` describes, on the endpoint the registry resolves it to."""
        return cls(build_transport(spec, "grade", registry=registry), max_reasks=spec.max_reasks)

    async def score(self, instruction: str, response: str, criteria: str | None = None) -> Score:
        """Grade ``response`` to ``instruction``; never raises for a failed grade."""
        started = time.perf_counter()
        messages: list[dict[str, str]] = self.template.render(instruction, response, criteria)
        attempts, usage, answers = 0, Usage(), []
        body: Any = None
        error = "no attempt made"
        for _ in range(self.max_reasks + 1):
            result = await self.transport.complete(messages, priority=attempts)
            attempts += result.attempts
            usage = usage + result.usage
            if result.content is None:
                error = f"grader endpoint failed: {result.error}"
                break
            body = result.body
            answers.append(result.content)
            value, reason, error_or_none = parse_score(result.content)
            if value is not None:
                return Score(
                    value,
                    reason,
                    {"answers": answers, "response": body},
                    attempts,
                    time.perf_counter() - started,
                    usage=usage,
                )
            error = f"invalid grade: {error_or_none}"
            messages = [
                *messages,
                {"role": "assistant", "content": result.content},
                {"role": "user", "content": REASK_MESSAGE},
            ]
        return Score(
            None,
            "",
            {"answers": answers, "response": body},
            attempts,
            time.perf_counter() - started,
            error=f"{error} (after {len(answers)} answer(s), {attempts} request(s))",
            usage=usage,
        )

    async def score_many(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        """Grade many (instruction, response, criteria) concurrently, in order."""
        return list(await asyncio.gather(*(self.score(*request) for request in requests)))

    def score_sync(self, instruction: str, response: str, criteria: str | None = None) -> Score:
        return self._background.run(self.score(instruction, response, criteria))

    def score_many_sync(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        return self._background.run(self.score_many(requests))

    async def aclose(self) -> None:
        await self.transport.aclose()

    def close(self) -> None:
        self._background.stop(self.transport.aclose())
