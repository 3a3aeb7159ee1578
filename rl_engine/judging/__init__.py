"""Judges: who wins a pair of responses (pairwise), and how good one response is (pointwise).

- :class:`OpenAIJudge` — an LLM behind any OpenAI-compatible endpoint (OpenAI, vLLM,
  DashScope): bounded concurrency, retries with backoff, re-asks, INVALID with a reason.
- :class:`LocalJudge` — a local transformers model, read from next-token probabilities.
- :class:`HeuristicJudge` — deterministic length/repetition rules; NOT an LLM judge.
- :class:`OpenAIScorer` — pointwise 1-10 grades.
- :class:`CachedJudge` with :class:`SQLiteJudgmentCache` — never pay twice for a judgment.

``LocalJudge`` is imported lazily so that using the HTTP judges does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rl_engine.judging._aio import run_sync
from rl_engine.judging.cache import (
    CachedJudge,
    InMemoryJudgmentCache,
    JudgmentCache,
    SQLiteJudgmentCache,
    judgment_key,
)
from rl_engine.judging.factory import make_judge, make_scorer
from rl_engine.judging.heuristic import HeuristicJudge, HeuristicScorer
from rl_engine.judging.openai_judge import OpenAIJudge
from rl_engine.judging.prompts import (
    CRITERIA_PAIRWISE,
    DEFAULT_PAIRWISE,
    DEFAULT_POINTWISE,
    LOCAL_PAIRWISE,
    PairwisePrompts,
    PairwiseTemplate,
    PointwiseTemplate,
)
from rl_engine.judging.scorer import OpenAIScorer, PointwiseScorer, parse_score
from rl_engine.judging.transport import RetryPolicy
from rl_engine.judging.types import Judge, JudgeSpec, Judgment, PairRequest, Score, Usage
from rl_engine.judging.verdict import Verdict, parse_verdict

if TYPE_CHECKING:
    from rl_engine.judging.local_judge import LocalJudge

__all__ = [
    "CRITERIA_PAIRWISE",
    "DEFAULT_PAIRWISE",
    "DEFAULT_POINTWISE",
    "LOCAL_PAIRWISE",
    "CachedJudge",
    "HeuristicJudge",
    "HeuristicScorer",
    "InMemoryJudgmentCache",
    "Judge",
    "JudgeSpec",
    "Judgment",
    "JudgmentCache",
    "LocalJudge",
    "OpenAIJudge",
    "OpenAIScorer",
    "PairRequest",
    "PairwisePrompts",
    "PairwiseTemplate",
    "PointwiseScorer",
    "PointwiseTemplate",
    "RetryPolicy",
    "SQLiteJudgmentCache",
    "Score",
    "Usage",
    "Verdict",
    "judgment_key",
    "make_judge",
    "make_scorer",
    "parse_score",
    "parse_verdict",
    "run_sync",
]


def __getattr__(name: str) -> Any:
    if name == "LocalJudge":
        from rl_engine.judging.local_judge import LocalJudge

        return LocalJudge
    raise AttributeError(f"module 'rl_engine.judging' has no attribute {name!r}")
