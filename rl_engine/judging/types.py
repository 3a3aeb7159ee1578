"""The data a judge takes and gives back, and the protocol every judge follows."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from rl_engine.judging.verdict import Verdict

__all__ = [
    "Judge",
    "JudgeSpec",
    "Judgment",
    "PairRequest",
    "Score",
    "Usage",
]


@dataclass(frozen=True)
class PairRequest:
    """One pairwise question: which of ``first`` (shown as A) and ``second`` (shown as B)
    answers ``instruction`` better, optionally under per-query ``criteria``."""

    instruction: str
    first: str
    second: str
    criteria: str | None = None


@dataclass
class Usage:
    """Tokens an endpoint reported for the calls behind one judgment (all attempts summed)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass
class Judgment:
    """A judge's answer to one :class:`PairRequest`.

    ``verdict`` INVALID always comes with the reason in ``error``; ``attempts`` counts the
    requests made (0 for a cached judgment, which cost nothing); ``raw`` is the judge's own
    output (response body, token probabilities, heuristic scores) kept for audit.
    """

    verdict: Verdict
    rationale: str
    raw: Any
    attempts: int
    latency_s: float
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    judge: str = ""
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (``raw`` must itself be JSON-safe, which every judge here keeps)."""
        return {
            "verdict": self.verdict.value,
            "rationale": self.rationale,
            "raw": self.raw,
            "attempts": self.attempts,
            "latency_s": self.latency_s,
            "error": self.error,
            "usage": dataclasses.asdict(self.usage),
            "judge": self.judge,
            "cached": self.cached,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Judgment:
        usage = payload.get("usage") or {}
        return cls(
            verdict=Verdict(payload["verdict"]),
            rationale=str(payload.get("rationale", "")),
            raw=payload.get("raw"),
            attempts=int(payload.get("attempts", 0)),
            latency_s=float(payload.get("latency_s", 0.0)),
            error=payload.get("error"),
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            judge=str(payload.get("judge", "")),
            cached=bool(payload.get("cached", False)),
        )


@dataclass
class Score:
    """A pointwise grade of one response: ``value`` 1..10, or None with the reason in ``error``
    when no valid grade came back after the last try."""

    value: int | None
    reason: str
    raw: Any
    attempts: int
    latency_s: float
    error: str | None = None
    usage: Usage = field(default_factory=Usage)


@runtime_checkable
class Judge(Protocol):
    """Anything that compares pairs of responses.

    ``compare`` returns one :class:`Judgment` per request, in the order of the requests, and
    never raises for a failed comparison: that is a Judgment with verdict INVALID and an error.
    """

    name: str

    async def compare(self, requests: Sequence[PairRequest]) -> list[Judgment]: ...

    def compare_sync(self, requests: Sequence[PairRequest]) -> list[Judgment]: ...


JudgeKind = Literal["openai", "local", "heuristic"]
_KINDS = ("openai", "local", "heuristic")


@dataclass
class JudgeSpec:
    """How to build a judge, JSON-safe so runs can store it. API keys are never stored: the
    spec names the environment variable that holds the key (``api_key_env``)."""

    kind: JudgeKind
    model: str = ""
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 32
    timeout_s: float = 120.0
    max_retries: int = 5
    cache_path: str | None = None
    # Additions beyond the agreed contract.
    max_reasks: int = 2
    temperature: float = 0.0
    max_tokens: int = 1024
    tie_margin: float | None = None
    batch_size: int = 8
    hedge: bool = True

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(
                f"JudgeSpec.kind must be one of {', '.join(_KINDS)}; got {self.kind!r}"
            )
        if self.kind in ("openai", "local") and not self.model:
            raise ValueError(
                f"JudgeSpec.model is required for a {self.kind} judge "
                "(the endpoint's model name, or a local model path)"
            )
        for name in ("max_concurrency", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"JudgeSpec.{name} must be at least 1; got {getattr(self, name)}")
        for name in ("max_retries", "max_reasks"):
            if getattr(self, name) < 0:
                raise ValueError(f"JudgeSpec.{name} cannot be negative; got {getattr(self, name)}")
        if self.timeout_s <= 0:
            raise ValueError(f"JudgeSpec.timeout_s must be positive seconds; got {self.timeout_s}")
        if self.tie_margin is not None and self.tie_margin < 0:
            raise ValueError(f"JudgeSpec.tie_margin cannot be negative; got {self.tie_margin}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> JudgeSpec:
        """Build a spec from ``payload``; unknown fields are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(
                f"unknown JudgeSpec field(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        if "kind" not in payload:
            raise ValueError("JudgeSpec field 'kind' is required (openai, local or heuristic)")
        return cls(**dict(payload))
