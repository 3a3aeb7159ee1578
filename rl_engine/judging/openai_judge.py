"""A pairwise judge on any OpenAI-compatible chat endpoint (OpenAI, vLLM, DashScope, ...)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rl_engine.judging._aio import BackgroundLoop
from rl_engine.judging.prompts import DEFAULT_PROMPTS, PairwisePrompts, PairwiseTemplate
from rl_engine.judging.transport import endpoint_transport
from rl_engine.judging.types import Judgment, PairRequest, Usage
from rl_engine.judging.verdict import Verdict, parse_verdict

__all__ = ["REASK_MESSAGE", "OpenAIJudge"]

REASK_MESSAGE = (
    "Your answer did not end with a verdict in the required format. Reply with exactly one "
    'of "[[A]]", "[[B]]" or "[[C]]" (tie) and nothing else.'
)


class OpenAIJudge:
    """Compares pairs with an LLM behind an OpenAI-compatible ``/chat/completions`` endpoint.

    At most ``max_concurrency`` requests are in flight (all the pairs of a batch are judged
    concurrently up to that bound). Transient failures — 429, 5xx, timeouts, connection
    errors — are retried up to ``max_retries`` times with exponential backoff and full jitter
    (``backoff_base_s``, ``backoff_cap_s``), honouring ``Retry-After``. An answer without a
    verdict is followed up (the judge's answer plus :data:`REASK_MESSAGE`) up to
    ``max_reasks`` times. A pair that still has no verdict gets ``Verdict.INVALID`` with the
    reason in ``error``; ``compare`` never raises for one failed pair. ``attempts`` counts
    every HTTP request, and ``usage`` sums the tokens of all of them.

    ``hedge`` (on by default): a request still unanswered after ``hedge_after_s`` (default:
    the 95th percentile of recent latencies) is sent a second time when a slot is idle, and
    the first answer is used — see :class:`~rl_engine.judging.transport.ChatTransport`. It
    only takes slots no waiting pair wants, so it shortens the tail of a batch (the step a
    trainer waits on) without slowing the rest. ``hedge=False`` turns it off.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        max_concurrency: int = 64,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        *,
        max_reasks: int = 2,
        prompts: PairwisePrompts = DEFAULT_PROMPTS,
        temperature: float = 0.0,
        max_tokens: int | None = 1024,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        extra_body: Mapping[str, Any] | None = None,
        seed: int | None = None,
        hedge: bool = True,
        hedge_after_s: float | None = None,
    ) -> None:
        self.transport = endpoint_transport(
            base_url,
            model,
            api_key=api_key,
            max_concurrency=max_concurrency,
            timeout_s=timeout_s,
            max_retries=max_retries,
            max_reasks=max_reasks,
            temperature=temperature,
            max_tokens=max_tokens,
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
            extra_body=extra_body,
            seed=seed,
            hedge=hedge,
            hedge_after_s=hedge_after_s,
        )
        self.max_reasks = max_reasks
        self.prompts = prompts
        self.name = f"openai:{model}"
        self._background = BackgroundLoop(f"judge-{model}")

    @property
    def identity(self) -> str:
        """What makes two judgments comparable: endpoint, model and sampling settings."""
        t = self.transport
        extra = ",".join(f"{k}={t.extra_body[k]!r}" for k in sorted(t.extra_body))
        return (
            f"openai|{t.base_url}|{t.model}|temperature={t.temperature}|"
            f"max_tokens={t.max_tokens}|{extra}"
        )

    def template_identity(self, request: PairRequest) -> str:
        return self.prompts.for_request(request).identity

    async def compare(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        """Judge every request concurrently; one Judgment per request, in request order."""
        return list(await asyncio.gather(*(self._judge(request) for request in requests)))

    def compare_sync(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        """Blocking ``compare`` on the judge's own background event loop (its HTTP client and
        connections are reused from call to call)."""
        return self._background.run(self.compare(requests))

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop."""
        await self.transport.aclose()

    def close(self) -> None:
        """Close the client used by ``compare_sync`` and stop its background loop."""
        self._background.stop(self.transport.aclose())

    async def __aenter__(self) -> OpenAIJudge:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _judge(self, request: PairRequest) -> Judgment:
        started = time.perf_counter()
        template: PairwiseTemplate = self.prompts.for_request(request)
        messages: list[dict[str, str]] = template.render(request)
        attempts = 0
        usage = Usage()
        answers: list[str] = []
        body: Any = None
        for ask in range(self.max_reasks + 1):
            result = await self.transport.complete(messages, priority=attempts)
            attempts += result.attempts
            usage = usage + result.usage
            if result.content is None:
                return self._invalid(
                    f"judge endpoint failed: {result.error}",
                    answers,
                    body,
                    attempts,
                    started,
                    usage,
                )
            body = result.body
            answers.append(result.content)
            verdict = parse_verdict(result.content)
            if verdict is not Verdict.INVALID:
                # A follow-up answer is just the tag; the reasoning is in the first answer.
                rationale = answers[0] if ask else result.content
                return Judgment(
                    verdict=verdict,
                    rationale=rationale,
                    raw={"answers": answers, "response": body},
                    attempts=attempts,
                    latency_s=time.perf_counter() - started,
                    usage=usage,
                    judge=self.name,
                )
            messages = [
                *messages,
                {"role": "assistant", "content": result.content},
                {"role": "user", "content": REASK_MESSAGE},
            ]
        return self._invalid(
            f"no [[A]]/[[B]]/[[C]] verdict in {len(answers)} answer(s); "
            f"last answer: {answers[-1][:200]!r}",
            answers,
            body,
            attempts,
            started,
            usage,
        )

    def _invalid(
        self,
        error: str,
        answers: list[str],
        body: Any,
        attempts: int,
        started: float,
        usage: Usage,
    ) -> Judgment:
        return Judgment(
            verdict=Verdict.INVALID,
            rationale=answers[-1] if answers else "",
            raw={"answers": answers, "response": body},
            attempts=attempts,
            latency_s=time.perf_counter() - started,
            error=error,
            usage=usage,
            judge=self.name,
        )
