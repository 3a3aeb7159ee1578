"""Build judges from a :class:`JudgeSpec` (what runs store), reading API keys from the
environment at build time."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rl_engine.judging.cache import CachedJudge, SQLiteJudgmentCache
from rl_engine.judging.heuristic import HeuristicJudge, HeuristicScorer
from rl_engine.judging.openai_judge import OpenAIJudge
from rl_engine.judging.scorer import OpenAIScorer
from rl_engine.judging.types import Judge, JudgeSpec

if TYPE_CHECKING:
    from rl_engine.judging.local_judge import LocalJudge

__all__ = ["make_judge", "make_scorer", "resolve_api_key"]


def resolve_api_key(spec: JudgeSpec) -> str | None:
    """The key in the environment variable ``spec.api_key_env`` names, or None (local
    endpoints such as vLLM need none). The key never goes into the spec."""
    if not spec.api_key_env:
        return None
    return os.environ.get(spec.api_key_env) or None


def make_judge(spec: JudgeSpec) -> Judge:
    """The judge ``spec`` describes, wrapped in a SQLite judgment cache when
    ``spec.cache_path`` is set.

    ``kind="local"`` loads ``spec.model`` with :func:`rl_engine.models.load_policy` (a local
    path or a known name), which takes seconds to minutes.
    """
    judge: OpenAIJudge | HeuristicJudge | LocalJudge
    if spec.kind == "openai":
        judge = OpenAIJudge(
            spec.base_url,
            spec.model,
            api_key=resolve_api_key(spec),
            max_concurrency=spec.max_concurrency,
            timeout_s=spec.timeout_s,
            max_retries=spec.max_retries,
            max_reasks=spec.max_reasks,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            hedge=spec.hedge,
        )
    elif spec.kind == "heuristic":
        judge = HeuristicJudge() if spec.tie_margin is None else HeuristicJudge(spec.tie_margin)
    elif spec.kind == "local":
        from rl_engine.judging.local_judge import LocalJudge
        from rl_engine.models import load_policy

        model, tokenizer = load_policy(spec.model)
        judge = LocalJudge(
            model,
            tokenizer,
            batch_size=spec.batch_size,
            tie_margin=0.1 if spec.tie_margin is None else spec.tie_margin,
            name=f"local:{spec.model}",
        )
    else:  # JudgeSpec validates kind; this guards specs built around that check
        raise ValueError(f"unknown judge kind {spec.kind!r}")
    if spec.cache_path:
        return CachedJudge(judge, SQLiteJudgmentCache(spec.cache_path))
    return judge


def make_scorer(spec: JudgeSpec) -> OpenAIScorer | HeuristicScorer:
    """A pointwise 1..10 grader: on the endpoint of an ``openai`` spec, or the offline
    :class:`HeuristicScorer` (not an LLM) for a ``heuristic`` spec."""
    if spec.kind == "heuristic":
        return HeuristicScorer()
    if spec.kind != "openai":
        raise ValueError(
            f"a pointwise scorer needs an 'openai' or 'heuristic' JudgeSpec, got kind "
            f"{spec.kind!r}: local models grade pairs (LocalJudge), not 1..10 scores"
        )
    return OpenAIScorer(
        spec.base_url,
        spec.model,
        api_key=resolve_api_key(spec),
        max_concurrency=spec.max_concurrency,
        timeout_s=spec.timeout_s,
        max_retries=spec.max_retries,
        max_reasks=spec.max_reasks,
        temperature=spec.temperature,
        hedge=spec.hedge,
    )
