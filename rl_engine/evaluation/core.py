"""What every benchmark kind of the evaluation runner shares: items and settings, the judges
an evaluation may need, results, and the chunked judge calls that report progress."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rl_engine.evaluation.grading import RubricGrader, RubricRequest
from rl_engine.evaluation.longinput import EXTRACTIONS, LongInputItem
from rl_engine.judging.scorer import PointwiseScorer
from rl_engine.judging.types import Judge
from rl_engine.judging.usage import Usage

KINDS = ("writingbench", "longbench_write", "creative", "longbench_v2", "pairwise")

Generator = Callable[[Sequence[str]], list[str]]
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Criterion:
    """A criterion of an item: a WritingBench checklist entry or a creative rubric line."""

    name: str
    description: str = ""
    negative: bool = False


@dataclass
class EvalItem:
    """One benchmark item. Which fields matter depends on the kind:
    ``criteria`` (writingbench, creative), ``required_words`` (longbench_write),
    ``long_input`` (longbench_v2), ``baseline`` (pairwise: the baseline system's response).
    ``response`` set means the system's answer is already written (e.g. a reference tier
    evaluated as a system): it is used instead of generating."""

    item_id: str
    prompt: str
    domain: str = ""
    required_words: int | None = None
    criteria: tuple[Criterion, ...] = ()
    baseline: str | None = None
    long_input: LongInputItem | None = None
    response: str | None = None


@dataclass
class EvalSettings:
    """How to run one evaluation."""

    kind: str
    max_new_tokens: int = 512
    batch_size: int = 8
    temperature: float = 0.0
    top_p: float = 1.0
    iterations: int = 1
    context_tokens: int = 2048
    bootstrap: int = 1000
    seed: int = 0
    # longbench_v2: "official" reads answers as LongBench v2's pred.py; "lenient" is our variant.
    extraction: str = "official"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"EvalSettings.kind must be one of {', '.join(KINDS)}; got {self.kind!r}"
            )
        for name in ("max_new_tokens", "batch_size", "iterations", "context_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"EvalSettings.{name} must be an integer >= 1; got {value!r}")
        if self.iterations > 1 and self.temperature <= 0:
            raise ValueError(
                "EvalSettings.iterations > 1 needs temperature > 0 (greedy decoding would "
                "write the same piece every time)"
            )
        if self.bootstrap < 0:
            raise ValueError(f"EvalSettings.bootstrap must be >= 0; got {self.bootstrap}")
        if self.extraction not in EXTRACTIONS:
            raise ValueError(
                f"EvalSettings.extraction must be one of {', '.join(EXTRACTIONS)}; "
                f"got {self.extraction!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evaluators:
    """The judges an evaluation may need: ``scorer`` (writingbench), ``grader``
    (longbench_write quality, creative rubric), ``judge`` (pairwise)."""

    scorer: PointwiseScorer | None = None
    grader: RubricGrader | None = None
    judge: Judge | None = None


@dataclass
class Generated:
    """One response of the system: for ``item_id``'s ``iteration`` (0-based). Long-input
    items also carry the context's tokens and how many were cut from its middle."""

    item_id: str
    iteration: int
    response: str
    context_tokens: int | None = None
    truncated_tokens: int = 0


@dataclass
class ItemResult:
    """A judged response. ``score`` is the item's headline number on a 0-100 scale (None
    when it could not be judged; ``error`` says why); ``details`` holds the kind's parts."""

    item_id: str
    iteration: int
    response: str
    produced_words: int
    score: float | None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    judge_latency_s: float = 0.0
    # What judging it cost: requests (re-asks and retries included) and reported tokens.
    judge_attempts: int = 0
    judge_usage: Usage = field(default_factory=Usage)


@dataclass
class EvalReport:
    """Per-item results, the kind's aggregates (JSON-safe) and where the time went."""

    kind: str
    results: list[ItemResult]
    aggregates: dict[str, Any]
    generation_s: float = 0.0
    judging_s: float = 0.0


# One response with the item it answers, as the judging of every kind takes them.
Pairs = Sequence[tuple[EvalItem, Generated]]


def criterion_text(criterion: Criterion) -> str:
    return f"{criterion.name}: {criterion.description}" if criterion.description else criterion.name


def mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


# Judge calls go out in chunks, so progress can be reported as they come back; a chunk is
# large enough to keep an endpoint's concurrency busy.
JUDGE_CHUNK = 64


class Tracker:
    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.total = 0
        self.done = 0

    async def advance(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            # In a thread: the callback may block (a database write), the event loop must not.
            await asyncio.to_thread(self.progress, "judging", self.done, self.total)


async def in_chunks(
    call: Callable[[Sequence[Any]], Any], requests: Sequence[Any], tracker: Tracker
) -> list[Any]:
    tracker.total += len(requests)
    answers: list[Any] = []
    for start in range(0, len(requests), JUDGE_CHUNK):
        part = requests[start : start + JUDGE_CHUNK]
        got = list(await call(part))
        if len(got) != len(part):
            raise RuntimeError(f"the judge returned {len(got)} answers for {len(part)} requests")
        answers.extend(got)
        await tracker.advance(len(part))
    return answers


async def grade_all(
    grader: RubricGrader | None, requests: Sequence[RubricRequest], kind: str, tracker: Tracker
) -> list[Any]:
    if grader is None:
        raise ValueError(f"{kind} needs a rubric grader (Evaluators.grader)")
    return await in_chunks(grader.grade, requests, tracker)
