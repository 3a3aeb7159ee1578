"""Build judges and scorers from a :class:`JudgeSpec` (what runs store). The endpoint is
resolved by name in the deployment's registry at build time, which also reads the key from
the environment; neither is ever stored in the spec."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rl_engine.judging.cache import CachedJudge, SQLiteJudgmentCache
from rl_engine.judging.endpoints import EndpointRegistry, default_registry
from rl_engine.judging.heuristic import HeuristicJudge, HeuristicScorer
from rl_engine.judging.openai_judge import OpenAIJudge
from rl_engine.judging.scorer import OpenAIScorer
from rl_engine.judging.types import Judge, JudgeSpec

if TYPE_CHECKING:
    from rl_engine.judging.local_judge import LocalJudge

__all__ = ["make_judge", "make_scorer"]


def make_judge(spec: JudgeSpec, registry: EndpointRegistry | None = None) -> Judge:
    """The judge ``spec`` describes, wrapped in a SQLite judgment cache when
    ``spec.cache_path`` is set.

    A ``local`` endpoint loads ``spec.model`` with :func:`rl_engine.models.load_policy` (a
    local path or a known name), which takes seconds to minutes.
    """
    resolved = (registry or default_registry()).resolve(spec)
    judge: OpenAIJudge | HeuristicJudge | LocalJudge
    if resolved.kind == "openai":
        judge = OpenAIJudge.from_spec(spec, registry=registry)
    elif resolved.kind == "heuristic":
        judge = HeuristicJudge() if spec.tie_margin is None else HeuristicJudge(spec.tie_margin)
    else:
        from rl_engine.judging.local_judge import LocalJudge  # imports torch: only when used
        from rl_engine.models import load_policy

        model, tokenizer = load_policy(resolved.model)
        judge = LocalJudge(
            model,
            tokenizer,
            batch_size=spec.batch_size,
            tie_margin=0.1 if spec.tie_margin is None else spec.tie_margin,
            name=f"local:{resolved.model}",
        )
    if spec.cache_path:
        return CachedJudge(judge, SQLiteJudgmentCache(spec.cache_path))
    return judge


def make_scorer(
    spec: JudgeSpec, registry: EndpointRegistry | None = None
) -> OpenAIScorer | HeuristicScorer:
    """A pointwise 1..10 grader: on the endpoint of an OpenAI-compatible spec, or the
    offline :class:`HeuristicScorer` (not an LLM) for the ``heuristic`` endpoint."""
    resolved = (registry or default_registry()).resolve(spec)
    if resolved.kind == "heuristic":
        return HeuristicScorer()
    if resolved.kind != "openai":
        raise ValueError(
            f"a pointwise scorer needs an OpenAI-compatible or the 'heuristic' endpoint, got "
            f"{spec.endpoint!r} ({resolved.kind}): local models grade pairs (LocalJudge), not "
            "1..10 scores"
        )
    return OpenAIScorer.from_spec(spec, registry=registry)
