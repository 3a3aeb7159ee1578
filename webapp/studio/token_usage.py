"""Token accounting: what the model calls of a run, a pipeline job, an evaluation or a
campaign cost, in requests, tokens and — when the endpoint declares a price — money.

Rows store what each call cost (``Judgment``, ``Reference``, ``PolicyResponse``,
``EvalItemResult``, ``JudgeVote``); a pipeline job also keeps a per-endpoint tally
(``PipelineJob.usage``) that includes the calls whose output was not stored (a failed
generation is paid for too). Cost is computed when shown, at the price the deployment
declares now for the endpoint (``WRITING_RL_ENDPOINTS``); None when it declares none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rl_engine.judging.endpoints import BUILTIN_ENDPOINTS, default_registry

__all__ = [
    "TokenTotals",
    "endpoint_cost",
    "job_usage_add",
    "job_usage_totals",
    "usage_entry",
]

USAGE_KEYS = ("calls", "attempts", "prompt_tokens", "completion_tokens")


@dataclass(frozen=True)
class TokenTotals:
    """Requests and tokens of some model calls; ``cost`` None when no endpoint involved
    declares a price (a partly priced total counts the priced part only, ``partly_priced``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0
    calls: int = 0
    cost: float | None = None
    partly_priced: bool = False

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenTotals) -> TokenTotals:
        costs = [c for c in (self.cost, other.cost) if c is not None]
        mixed = bool(costs) and (
            (self.cost is None and self.tokens > 0) or (other.cost is None and other.tokens > 0)
        )
        return TokenTotals(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.attempts + other.attempts,
            self.calls + other.calls,
            sum(costs) if costs else None,
            self.partly_priced or other.partly_priced or mixed,
        )

    @classmethod
    def of(
        cls,
        endpoint: str,
        *,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        attempts: int | None = 0,
        calls: int | None = 0,
    ) -> TokenTotals:
        """Totals of calls to ``endpoint``, priced at its declared price."""
        prompt, completion = int(prompt_tokens or 0), int(completion_tokens or 0)
        return cls(
            prompt,
            completion,
            int(attempts or 0),
            int(calls or 0),
            endpoint_cost(endpoint, prompt, completion),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens": self.tokens,
            "attempts": self.attempts,
            "calls": self.calls,
            "cost": self.cost,
            "partly_priced": self.partly_priced,
        }


def endpoint_cost(endpoint: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """What the tokens cost at endpoint ``endpoint``'s declared price, None without one (or
    when the deployment's endpoint declarations cannot be read: no price is better than a
    made-up one)."""
    if not endpoint:
        return None
    try:
        registry = default_registry()
    except ValueError:
        return None
    return registry.cost(endpoint, prompt_tokens, completion_tokens)


def usage_entry(
    *, calls: int = 0, attempts: int = 0, prompt_tokens: int = 0, completion_tokens: int = 0
) -> dict[str, int]:
    return {
        "calls": calls,
        "attempts": attempts,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
    }


def job_usage_add(job_id: int, endpoint: str, spent: Mapping[str, int]) -> None:
    """Add ``spent`` (a :func:`usage_entry`) to job ``job_id``'s tally for ``endpoint``.

    Calls of the built-in ``heuristic`` and ``local`` endpoints are not tallied. Call it
    inside the job's fence (``Lease.fenced``), in the transaction that stores the
    batch: the fence's UPDATE holds the row, so the read-modify-write cannot interleave."""
    from webapp.studio.models import PipelineJob

    if endpoint in BUILTIN_ENDPOINTS or not any(spent.get(key) for key in USAGE_KEYS):
        return  # the heuristic and local models are not billed and report no tokens
    usage = dict(
        PipelineJob.objects.select_for_update().values_list("usage", flat=True).get(pk=job_id) or {}
    )
    before = usage.get(endpoint) or {}
    usage[endpoint] = {
        key: int(before.get(key) or 0) + int(spent.get(key) or 0) for key in USAGE_KEYS
    }
    PipelineJob.objects.filter(pk=job_id).update(usage=usage)


def usage_totals(usage: Mapping[str, Any] | None) -> TokenTotals:
    """The totals of a per-endpoint tally, each endpoint at its own price."""
    total = TokenTotals()
    for endpoint, spent in (usage or {}).items():
        if isinstance(spent, Mapping):
            total = total + TokenTotals.of(
                str(endpoint),
                prompt_tokens=spent.get("prompt_tokens"),
                completion_tokens=spent.get("completion_tokens"),
                attempts=spent.get("attempts"),
                calls=spent.get("calls"),
            )
    return total


def job_usage_totals(job: Any) -> TokenTotals:
    return usage_totals(getattr(job, "usage", None))


def totals_sum(parts: Iterable[TokenTotals]) -> TokenTotals:
    total = TokenTotals()
    for part in parts:
        total = total + part
    return total
