"""The data a judge takes and gives back, and the protocol every judge follows."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from rl_engine.judging.endpoints import EndpointRegistry, EndpointSpec
from rl_engine.judging.usage import Usage
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


@dataclass(kw_only=True)
class JudgeSpec(EndpointSpec):
    """How to build a judge (or a pointwise scorer): an :class:`EndpointSpec` plus what only
    judges need. JSON-safe so runs can store it; API keys and key variables are never in it
    (the deployment's endpoint registry supplies them when the judge is built)."""

    max_reasks: int = field(
        default=2,
        metadata={"help": "Times the judge is asked again when its answer has no verdict."},
    )
    cache_path: str | None = field(
        default=None,
        metadata={
            "help": "File of the judgment cache (identical comparisons are judged once); "
            "empty = no cache."
        },
    )
    tie_margin: float | None = field(
        default=None,
        metadata={"help": "Heuristic and local judges: score difference below which it is a tie."},
    )
    batch_size: int = field(
        default=8, metadata={"help": "Local judge only: comparisons per forward batch."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size < 1:
            raise ValueError(f"JudgeSpec.batch_size must be at least 1; got {self.batch_size}")
        if self.max_reasks < 0:
            raise ValueError(f"JudgeSpec.max_reasks cannot be negative; got {self.max_reasks}")
        if self.tie_margin is not None and self.tie_margin < 0:
            raise ValueError(f"JudgeSpec.tie_margin cannot be negative; got {self.tie_margin}")

    @classmethod
    def from_dict(
        cls, payload: Mapping[str, Any], registry: EndpointRegistry | None = None
    ) -> JudgeSpec:
        """Build a spec from ``payload``; unknown fields are an error naming them. A stored
        spec from before the endpoint registry (``kind``/``base_url``/``api_key_env``) is
        mapped onto the declared endpoint at that URL, or refused with the reason."""
        if not isinstance(payload, Mapping):
            raise ValueError(f"a JudgeSpec must be an object, got {type(payload).__name__}")
        values = cls._from_payload(payload, registry)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown JudgeSpec field(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**values)
