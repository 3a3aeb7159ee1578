"""A pairwise judge on any OpenAI-compatible chat endpoint (OpenAI, vLLM, DashScope, ...)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from rl_engine.judging._aio import BackgroundLoop
from rl_engine.judging.endpoints import EndpointRegistry
from rl_engine.judging.prompts import DEFAULT_PROMPTS, PairwisePrompts, PairwiseTemplate
from rl_engine.judging.transport import ChatTransport, build_transport
from rl_engine.judging.types import JudgeSpec, Judgment, PairRequest, Usage
from rl_engine.judging.verdict import Verdict, parse_verdict

__all__ = ["REASK_MESSAGE", "OpenAIJudge", "read_verdict"]

REASK_MESSAGE = (
    "Your answer did not end with a verdict in the required format. Reply with exactly one "
    'of "[[A]]", "[[B]]" or "[[C]]" (tie) and nothing else.'
)


_JSON_VERDICTS = {"A": Verdict.A, "B": Verdict.B, "C": Verdict.TIE}


def read_verdict(text: str | None) -> Verdict:
    """The verdict in a judge's answer: its last ``[[A]]``/``[[B]]``/``[[C]]`` tag, or, for an
    answer constrained by a JSON schema, the ``verdict`` of the JSON object.

    >>> read_verdict('{"reason": "tighter", "verdict": "B"}')
    <Verdict.B: 'B'>
    >>> read_verdict("I prefer [[A]]")
    <Verdict.A: 'A'>
    """
    verdict = parse_verdict(text)
    if verdict is not Verdict.INVALID or not text:
        return verdict
    try:
        payload = json.loads(text.strip())
    except ValueError:
        return Verdict.INVALID
    if isinstance(payload, dict) and isinstance(payload.get("verdict"), str):
        return _JSON_VERDICTS.get(payload["verdict"].strip().strip("[]").upper(), Verdict.INVALID)
    return Verdict.INVALID


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

    With a structured-output mode the answer is the tag alone (``grammar``, ``guided_choice``)
    or a JSON object ``{"reason": ..., "verdict": "A"|"B"|"C"}`` (``json_schema``); both are
    read here.

    The transport's ``hedge`` (on for judges built from a spec): a request still unanswered
    after ``hedge_after_s`` (default: the 95th percentile of recent latencies) is sent a
    second time when a slot is idle, and the first answer is used — see
    :class:`~rl_engine.judging.transport.ChatTransport`. It only takes slots no waiting pair
    wants, so it shortens the tail of a batch (the step a trainer waits on) without slowing
    the rest. ``hedge=False`` in the spec turns it off.
    """

    def __init__(
        self,
        transport: ChatTransport,
        *,
        max_reasks: int = 2,
        prompts: PairwisePrompts = DEFAULT_PROMPTS,
    ) -> None:
        if max_reasks < 0:
            raise ValueError(f"max_reasks cannot be negative, got {max_reasks}")
        self.transport = transport
        self.max_reasks = max_reasks
        self.prompts = prompts
        self.name = f"openai:{transport.model}"
        self._background = BackgroundLoop(f"judge-{transport.model}")

    @classmethod
    def from_spec(
        cls,
        spec: JudgeSpec,
        *,
        registry: EndpointRegistry | None = None,
        prompts: PairwisePrompts = DEFAULT_PROMPTS,
    ) -> OpenAIJudge:
        """The judge ``spec`` describes, on the endpoint the registry resolves it to."""
        transport = build_transport(spec, "verdict", registry=registry)
        return cls(transport, max_reasks=spec.max_reasks, prompts=prompts)

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
            verdict = read_verdict(result.content)
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
