"""The evaluation runner: generate responses for benchmark items, judge them, aggregate.

Five benchmark kinds (:data:`KINDS`):

* ``writingbench``: each criterion of an item scored 1-10 by a pointwise scorer, one
  criterion at a time; item score = mean x 10; overall = mean of all criterion scores x 10;
  per domain = mean of item scores (WritingBench's own aggregation);
* ``longbench_write``: length score S_l from the required words, quality S_q from six 1-5
  dimensions graded by a rubric grader, S̄ = (S_l + S_q) / 2, a table per length bucket;
* ``creative``: rubric criteria scored 0-20 (faults inverted), piece score 0-100, several
  iterations per prompt pooled (EQ-Bench) with a bootstrap interval over pieces;
* ``longbench_v2``: multiple choice over a long context cut from the middle to fit the
  window; answers read as LongBench v2's ``pred.py`` reads them (or, labelled, leniently);
  accuracy overall, by difficulty and by context length;
* ``pairwise``: the system against a baseline response per item, judged in both orders
  (a flip is a tie), adjusted and length-controlled win rates.

The two phases are separate so a deployment can run them on different machines (generation
on a GPU worker, judging on an I/O worker): :func:`generate_responses` then
:func:`judge_responses`; :func:`evaluate` runs both and times each. A failed judgment is
never a zero: the item carries the error and is left out of the aggregates, which count it.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from rl_engine.evaluation.grading import (
    LONGBENCH_WRITE_QUALITY,
    RubricGrader,
    RubricRequest,
    creative_rubric,
)
from rl_engine.evaluation.longinput import (
    EXTRACTIONS,
    LongInputItem,
    accuracy,
    build_prompt,
    extract_choice,
)
from rl_engine.evaluation.metrics import (
    LongWriteRecord,
    RubricPiece,
    length_quality_table,
    quality_score,
    rubric_piece_score,
    rubric_summary,
    writingbench_summary,
)
from rl_engine.evaluation.winrate import combine_orders, length_controlled_win_rate
from rl_engine.judging.types import Judge, PairRequest, Score
from rl_engine.outcomes import Outcome, OutcomeCounts
from rl_engine.text import count_words, length_score

__all__ = [
    "DEFAULT_CREATIVE_CRITERIA",
    "KINDS",
    "Criterion",
    "EvalItem",
    "EvalReport",
    "EvalSettings",
    "Evaluators",
    "Generated",
    "Generator",
    "ItemResult",
    "PointwiseScorer",
    "evaluate",
    "generate_responses",
    "judge_responses",
    "judge_responses_sync",
    "model_generator",
]

KINDS = ("writingbench", "longbench_write", "creative", "longbench_v2", "pairwise")

Generator = Callable[[Sequence[str]], list[str]]
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Criterion:
    """A criterion of an item: a WritingBench checklist entry or a creative rubric line."""

    name: str
    description: str = ""
    negative: bool = False


# EQ-Bench v3 scores pieces on a long list of criteria; these are a short list in our words.
DEFAULT_CREATIVE_CRITERIA: tuple[Criterion, ...] = (
    Criterion("Adherence to the instructions"),
    Criterion("Vivid, specific imagery"),
    Criterion("Coherent narrative"),
    Criterion("Emotional engagement"),
    Criterion("Originality"),
    Criterion("Purple prose", negative=True),
    Criterion("Meandering or repetition", negative=True),
)


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


class PointwiseScorer(Protocol):
    """Scores one response 1-10 under optional criteria (rl_engine.judging's scorers)."""

    async def score(
        self, instruction: str, response: str, criteria: str | None = None
    ) -> Score: ...


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


@dataclass
class EvalReport:
    """Per-item results, the kind's aggregates (JSON-safe) and where the time went."""

    kind: str
    results: list[ItemResult]
    aggregates: dict[str, Any]
    generation_s: float = 0.0
    judging_s: float = 0.0


# -- generation ---------------------------------------------------------------------------------


def model_generator(
    model: Any,
    tokenizer: Any,
    settings: EvalSettings,
    generation_kwargs: Mapping[str, Any] | None = None,
) -> Generator:
    """A generator that writes with ``rl_engine.models.generate`` (the engine's own, as in
    training), batched by ``settings.batch_size``."""
    from rl_engine.models import generate

    def write(prompts: Sequence[str]) -> list[str]:
        return generate(
            model,
            tokenizer,
            prompts,
            max_new_tokens=settings.max_new_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            batch_size=settings.batch_size,
            seed=settings.seed,
            **dict(generation_kwargs or {}),
        )

    return write


def _count_tokens_roughly(text: str) -> int:
    # Without a tokenizer, ~1.3 tokens per whitespace word is the usual English ratio.
    return math.ceil(len(text.split()) * 1.3)


def system_prompt(
    item: EvalItem, settings: EvalSettings, tokenizer: Any | None = None
) -> tuple[str, int | None, int]:
    """The prompt the system answers, its context tokens and the tokens cut from it."""
    if settings.kind != "longbench_v2":
        return item.prompt, None, 0
    if item.long_input is None:
        raise ValueError(f"item {item.item_id!r}: a longbench_v2 item needs its long_input")
    # Leave room for the answer inside the window.
    budget = max(64, settings.context_tokens - settings.max_new_tokens)
    built = (
        build_prompt(item.long_input, budget, tokenizer=tokenizer)
        if tokenizer is not None
        else build_prompt(item.long_input, budget, count_tokens=_count_tokens_roughly)
    )
    return built.prompt, built.context_tokens, built.dropped_tokens


def generate_responses(
    items: Sequence[EvalItem],
    settings: EvalSettings,
    generator: Generator | None,
    tokenizer: Any | None = None,
    progress: Progress | None = None,
) -> list[Generated]:
    """The system's responses: ``settings.iterations`` per item (creative) or one.

    Items with a ``response`` already set are not generated. ``generator`` may be None only
    when every item has one. ``progress(phase, done, total)`` is called after each batch.
    """
    iterations = settings.iterations if settings.kind == "creative" else 1
    plans: list[tuple[EvalItem, int, str, int | None, int]] = []
    for item in items:
        prompt, context_tokens, dropped = system_prompt(item, settings, tokenizer)
        for iteration in range(iterations):
            plans.append((item, iteration, prompt, context_tokens, dropped))
    pending = [i for i, (item, *_rest) in enumerate(plans) if item.response is None]
    if pending and generator is None:
        raise ValueError(
            f"{len(pending)} item(s) have no response and no generator was given "
            f"(first: {plans[pending[0]][0].item_id!r})"
        )
    responses: dict[int, str] = {
        i: str(plan[0].response) for i, plan in enumerate(plans) if plan[0].response is not None
    }
    chunk = max(settings.batch_size, 1)
    for start in range(0, len(pending), chunk):
        batch = pending[start : start + chunk]
        assert generator is not None
        written = generator([plans[i][2] for i in batch])
        if len(written) != len(batch):
            raise RuntimeError(f"the generator returned {len(written)} texts for {len(batch)}")
        responses.update(zip(batch, written, strict=True))
        if progress is not None:
            progress("generation", min(start + chunk, len(pending)), len(pending))
    return [
        Generated(item.item_id, iteration, responses[i], context_tokens, dropped)
        for i, (item, iteration, _prompt, context_tokens, dropped) in enumerate(plans)
    ]


# -- judging ------------------------------------------------------------------------------------


def _criterion_text(criterion: Criterion) -> str:
    return f"{criterion.name}: {criterion.description}" if criterion.description else criterion.name


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


# Judge calls go out in chunks, so progress can be reported as they come back; a chunk is
# large enough to keep an endpoint's concurrency busy.
JUDGE_CHUNK = 64


class _Tracker:
    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.total = 0
        self.done = 0

    async def advance(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            # In a thread: the callback may block (a database write), the event loop must not.
            await asyncio.to_thread(self.progress, "judging", self.done, self.total)


async def _in_chunks(
    call: Callable[[Sequence[Any]], Any], requests: Sequence[Any], tracker: _Tracker
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


async def _judge_writingbench(
    pairs: Sequence[tuple[EvalItem, Generated]], evaluators: Evaluators, tracker: _Tracker
) -> tuple[list[ItemResult], dict[str, Any]]:
    scorer = evaluators.scorer
    if scorer is None:
        raise ValueError("writingbench needs a pointwise scorer (Evaluators.scorer)")
    jobs = [
        (index, criterion)
        for index, (item, _generated) in enumerate(pairs)
        for criterion in item.criteria
    ]

    async def score(part: Sequence[tuple[int, Criterion]]) -> list[Score]:
        return list(
            await asyncio.gather(
                *(
                    scorer.score(pairs[i][0].prompt, pairs[i][1].response, _criterion_text(c))
                    for i, c in part
                )
            )
        )

    scores: list[Score] = await _in_chunks(score, jobs, tracker)
    per_item: list[list[tuple[Criterion, Score]]] = [[] for _ in pairs]
    for (index, criterion), grade in zip(jobs, scores, strict=True):
        per_item[index].append((criterion, grade))
    results = []
    criterion_scores: dict[str, list[int | None]] = {}
    domains: dict[str, str] = {}
    for (item, generated), graded in zip(pairs, per_item, strict=True):
        key = f"{item.item_id}#{generated.iteration}"
        values = [g.value for _c, g in graded]
        criterion_scores[key] = values
        domains[key] = item.domain or "(none)"
        valid = [v for v in values if v is not None]
        errors = [f"{c.name}: {g.error}" for c, g in graded if g.value is None]
        error = None
        if not item.criteria:
            error = "the item has no criteria to score"
        elif not valid:
            error = "every criterion judgment failed: " + "; ".join(errors)
        results.append(
            ItemResult(
                item.item_id, generated.iteration, generated.response,
                count_words(generated.response),
                score=_mean(valid) * 10.0 if valid else None,  # type: ignore[operator]
                details={
                    "criteria": [
                        {"name": c.name, "score": g.value, "reason": g.reason, "error": g.error}
                        for c, g in graded
                    ],
                    "invalid_criteria": len(errors),
                },
                error=error,
                judge_latency_s=sum(g.latency_s for _c, g in graded),
            )
        )  # fmt: skip
    summary = writingbench_summary(criterion_scores, domains)
    return results, {
        "score": summary.overall_x10,
        "overall_1_10": summary.overall,
        "criteria_scored": summary.scored,
        "criteria_invalid": summary.invalid,
    }


async def _grade(
    grader: RubricGrader | None, requests: Sequence[RubricRequest], kind: str, tracker: _Tracker
) -> list[Any]:
    if grader is None:
        raise ValueError(f"{kind} needs a rubric grader (Evaluators.grader)")
    return await _in_chunks(grader.grade, requests, tracker)


async def _judge_longbench_write(
    pairs: Sequence[tuple[EvalItem, Generated]], evaluators: Evaluators, tracker: _Tracker
) -> tuple[list[ItemResult], dict[str, Any]]:
    requests = [
        RubricRequest(item.prompt, generated.response, LONGBENCH_WRITE_QUALITY)
        for item, generated in pairs
    ]
    grades = await _grade(evaluators.grader, requests, "longbench_write", tracker)
    results: list[ItemResult] = []
    records: list[LongWriteRecord] = []
    for (item, generated), grade in zip(pairs, grades, strict=True):
        produced = count_words(generated.response)
        quality = quality_score(grade.values) if grade.values is not None else None
        s_l = length_score(item.required_words, produced) if item.required_words else None
        errors = []
        if s_l is None:
            errors.append("the item has no required length, so no length score")
        if grade.values is None:
            errors.append(f"quality judgment failed: {grade.error}")
        if item.required_words:
            # A failed quality judgment still counts for S_l (quality None).
            records.append(LongWriteRecord(item.required_words, produced, quality))
        overall = (s_l + quality) / 2.0 if s_l is not None and quality is not None else None
        results.append(
            ItemResult(
                item.item_id, generated.iteration, generated.response, produced, overall,
                details={
                    "required_words": item.required_words,
                    "length_score": s_l,
                    "quality_score": quality,
                    "dimensions": grade.values,
                    "reason": grade.reason,
                },
                error="; ".join(errors) or None,
                judge_latency_s=grade.latency_s,
            )
        )  # fmt: skip
    table = length_quality_table(records) if records else []
    overall_row = table[-1] if table else None
    return results, {
        "score": overall_row.overall if overall_row else None,
        "S_l": overall_row.length if overall_row else None,
        "S_q": overall_row.quality if overall_row else None,
        "S_bar": overall_row.overall if overall_row else None,
        "quality_invalid": sum(1 for g in grades if g.values is None),
        "buckets": [
            {
                "bucket": row.bucket,
                "count": row.count,
                "S_l": row.length,
                "S_q": row.quality,
                "S_bar": row.overall,
                "quality_count": row.quality_count,
            }
            for row in table
        ],
    }


async def _judge_creative(
    pairs: Sequence[tuple[EvalItem, Generated]],
    evaluators: Evaluators,
    settings: EvalSettings,
    tracker: _Tracker,
) -> tuple[list[ItemResult], dict[str, Any]]:
    requests = []
    for item, generated in pairs:
        criteria = item.criteria or DEFAULT_CREATIVE_CRITERIA
        rubric = creative_rubric(
            [c.name for c in criteria], [c.name for c in criteria if c.negative]
        )
        requests.append(RubricRequest(item.prompt, generated.response, rubric))
    grades = await _grade(evaluators.grader, requests, "creative", tracker)
    results, pieces = [], []
    faults: set[str] = set()
    for (item, generated), request, grade in zip(pairs, requests, grades, strict=True):
        negative = {d.key for d in request.rubric.dimensions if d.negative}
        failed = None if grade.values is not None else f"rubric judgment failed: {grade.error}"
        faults |= negative
        piece = None
        if grade.values is not None:
            piece = rubric_piece_score(grade.values, negative)
            pieces.append(RubricPiece(item.item_id, generated.iteration, grade.values))
        results.append(
            ItemResult(
                item.item_id, generated.iteration, generated.response,
                count_words(generated.response), piece,
                details={"criteria": grade.values, "negative": sorted(negative),
                         "reason": grade.reason},
                error=failed,
                judge_latency_s=grade.latency_s,
            )
        )  # fmt: skip
    aggregates: dict[str, Any] = {"score": None, "low": None, "high": None, "pieces": len(pieces)}
    if pieces:
        summary = rubric_summary(pieces, faults, bootstrap=settings.bootstrap, seed=settings.seed)
        aggregates.update(score=summary.score, low=summary.low, high=summary.high)
    aggregates["invalid"] = len(results) - len(pieces)
    return results, aggregates


def _judge_longbench_v2(
    pairs: Sequence[tuple[EvalItem, Generated]], extraction: str
) -> tuple[list[ItemResult], dict[str, Any]]:
    predictions: dict[str, str | None] = {}
    results = []
    for item, generated in pairs:
        assert item.long_input is not None
        choice = extract_choice(generated.response, extraction)
        predictions[item.long_input.item_id] = choice
        correct = choice == item.long_input.answer
        results.append(
            ItemResult(
                item.item_id, generated.iteration, generated.response,
                count_words(generated.response), 100.0 if correct else 0.0,
                details={
                    "predicted": choice, "answer": item.long_input.answer, "correct": correct,
                    "difficulty": item.long_input.difficulty, "length": item.long_input.length,
                    "context_tokens": generated.context_tokens,
                    "truncated_tokens": generated.truncated_tokens,
                },
                error=None if choice is not None else "no answer of the form "
                "'The correct answer is (X)' (counted as wrong)",
            )
        )  # fmt: skip
    table = accuracy([item.long_input for item, _g in pairs if item.long_input], predictions)

    def rates(breakdown: Mapping[str, tuple[int, int]]) -> dict[str, float]:
        return {k: 100.0 * c / t for k, (c, t) in breakdown.items() if t}

    return results, {
        "score": 100.0 * table.overall if table.overall is not None else None,
        "accuracy": table.overall,
        "correct": table.correct,
        "total": table.total,
        "invalid": table.invalid,
        "by_difficulty": rates(table.by_difficulty),
        "by_length": rates(table.by_length),
        "truncated": sum(1 for _i, g in pairs if g.truncated_tokens > 0),
        "extraction": extraction,
    }


async def _judge_pairwise(
    pairs: Sequence[tuple[EvalItem, Generated]], evaluators: Evaluators, tracker: _Tracker
) -> tuple[list[ItemResult], dict[str, Any]]:
    judge = evaluators.judge
    if judge is None:
        raise ValueError("pairwise needs a pairwise judge (Evaluators.judge)")
    missing = [item.item_id for item, _g in pairs if item.baseline is None]
    if missing:
        raise ValueError(f"pairwise items need a baseline response; missing for {missing[:5]}")
    requests = []
    for item, generated in pairs:
        criteria = "\n".join(_criterion_text(c) for c in item.criteria) or None
        baseline = str(item.baseline)
        requests.append(PairRequest(item.prompt, generated.response, baseline, criteria))
        requests.append(PairRequest(item.prompt, baseline, generated.response, criteria))
    judgments = await _in_chunks(judge.compare, requests, tracker)
    outcomes = []
    results = []
    for index, (item, generated) in enumerate(pairs):
        first, second = judgments[2 * index], judgments[2 * index + 1]
        outcome = combine_orders(first.verdict, second.verdict)
        outcomes.append(outcome)
        errors = [j.error for j in (first, second) if j.error]
        results.append(
            ItemResult(
                item.item_id, generated.iteration, generated.response,
                count_words(generated.response),
                None if outcome.reward is None else 100.0 * outcome.reward,
                details={
                    "outcome": outcome.value,
                    "system_first": first.verdict.value, "system_second": second.verdict.value,
                    "baseline_words": count_words(str(item.baseline)),
                    "rationales": [first.rationale, second.rationale],
                },
                error=("judgment invalid: " + "; ".join(str(e) for e in errors or ["no verdict"]))
                if not outcome.valid else None,
                judge_latency_s=first.latency_s + second.latency_s,
            )
        )  # fmt: skip
    counts = OutcomeCounts.of(outcomes)
    total = counts.valid
    aggregates: dict[str, Any] = {
        "wins": counts.wins, "ties": counts.ties, "losses": counts.losses,
        "invalid": counts.invalid,
        "win_rate": counts.rate(Outcome.WIN),
        "adjusted_win_rate": counts.adjusted_win_rate,
        "length_controlled_win_rate": None, "length_coefficient": None,
    }  # fmt: skip
    if total:
        controlled = length_controlled_win_rate(
            outcomes,
            [r.produced_words for r in results],
            [r.details["baseline_words"] for r in results],
        )
        aggregates["length_controlled_win_rate"] = controlled.length_controlled
        aggregates["length_coefficient"] = controlled.length_coefficient
    aggregates["score"] = (
        100.0 * aggregates["adjusted_win_rate"] if aggregates["adjusted_win_rate"] is not None
        else None
    )  # fmt: skip
    return results, aggregates


def _per_domain(
    pairs: Sequence[tuple[EvalItem, Generated]], results: Sequence[ItemResult]
) -> dict[str, float]:
    by_domain: dict[str, list[float]] = {}
    for (item, _g), result in zip(pairs, results, strict=True):
        if result.score is not None:
            by_domain.setdefault(item.domain or "(none)", []).append(result.score)
    return {d: statistics.fmean(v) for d, v in sorted(by_domain.items())}


async def judge_responses(
    items: Sequence[EvalItem],
    generated: Sequence[Generated],
    settings: EvalSettings,
    evaluators: Evaluators,
    progress: Progress | None = None,
) -> tuple[list[ItemResult], dict[str, Any]]:
    """Judge ``generated`` (from :func:`generate_responses`) and aggregate.

    Returns per-response results (in the order of ``generated``) and the kind's aggregates,
    which always include ``score`` (0-100 or None), ``items``, ``errors`` and
    ``domain_scores`` (mean item score per domain). ``progress("judging", done, total)`` is
    called from a worker thread as judge calls come back (once at the end when nothing needs
    a judge), so it may block.
    """
    by_id = {item.item_id: item for item in items}
    unknown = [g.item_id for g in generated if g.item_id not in by_id]
    if unknown:
        raise ValueError(f"responses for unknown item(s): {unknown[:5]}")
    pairs = [(by_id[g.item_id], g) for g in generated]
    kind = settings.kind
    tracker = _Tracker(progress)
    if kind == "writingbench":
        results, aggregates = await _judge_writingbench(pairs, evaluators, tracker)
    elif kind == "longbench_write":
        results, aggregates = await _judge_longbench_write(pairs, evaluators, tracker)
    elif kind == "creative":
        results, aggregates = await _judge_creative(pairs, evaluators, settings, tracker)
    elif kind == "longbench_v2":
        results, aggregates = _judge_longbench_v2(pairs, settings.extraction)
    else:
        results, aggregates = await _judge_pairwise(pairs, evaluators, tracker)
    if tracker.total == 0 and progress is not None:
        await asyncio.to_thread(progress, "judging", len(results), len(results))
    aggregates["items"] = len(results)
    aggregates["errors"] = sum(1 for r in results if r.error)
    aggregates["domain_scores"] = _per_domain(pairs, results)
    return results, aggregates


def judge_responses_sync(
    items: Sequence[EvalItem],
    generated: Sequence[Generated],
    settings: EvalSettings,
    evaluators: Evaluators,
    progress: Progress | None = None,
) -> tuple[list[ItemResult], dict[str, Any]]:
    """Blocking :func:`judge_responses` (for Celery tasks and scripts)."""
    from rl_engine.judging._aio import run_sync

    return run_sync(judge_responses(items, generated, settings, evaluators, progress))


def evaluate(
    items: Sequence[EvalItem],
    settings: EvalSettings,
    evaluators: Evaluators,
    generator: Generator | None = None,
    model: Any | None = None,
    tokenizer: Any | None = None,
    progress: Progress | None = None,
) -> EvalReport:
    """Generate (with ``generator``, or ``model`` + ``tokenizer`` through the engine's
    ``generate``), judge and aggregate ``items``; times both phases separately."""
    if generator is None and model is not None:
        if tokenizer is None:
            raise ValueError("evaluate(model=...) needs the model's tokenizer too")
        generator = model_generator(model, tokenizer, settings)
    started = time.perf_counter()
    generated = generate_responses(items, settings, generator, tokenizer, progress)
    generation_s = time.perf_counter() - started
    started = time.perf_counter()
    results, aggregates = judge_responses_sync(items, generated, settings, evaluators, progress)
    judging_s = time.perf_counter() - started
    return EvalReport(settings.kind, results, aggregates, generation_s, judging_s)
