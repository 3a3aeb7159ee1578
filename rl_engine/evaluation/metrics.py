"""Benchmark scores: LongBench-Write (S_l, S_q, S̄), WritingBench criteria, creative-writing rubrics.

Formulas follow ``REFERENCE.md`` §3. Judges produce the raw numbers elsewhere
(:mod:`rl_engine.judging`); this module only validates and aggregates them, so the same code
scores a live evaluation run and an imported results file.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rl_engine.text import count_words, length_score

__all__ = [
    "LENGTH_BUCKETS",
    "QUALITY_DIMENSIONS",
    "BucketRow",
    "LongWriteRecord",
    "RubricPiece",
    "RubricSummary",
    "WritingBenchSummary",
    "count_words",
    "length_bucket",
    "length_quality_table",
    "length_score",
    "quality_score",
    "rubric_piece_score",
    "rubric_summary",
    "writingbench_summary",
]

# LongBench-Write's six quality dimensions, judged 1-5 each; length is judged separately.
QUALITY_DIMENSIONS: tuple[str, ...] = (
    "relevance",
    "accuracy",
    "coherence",
    "clarity",
    "breadth and depth",
    "reading experience",
)

# Required-length buckets [low, high) of LongBench-Write's tables. As in LongWriter's own
# evaluation, anything from 4000 words up falls in the last bucket.
LENGTH_BUCKETS: tuple[tuple[int, int], ...] = ((0, 500), (500, 2000), (2000, 4000), (4000, 20000))


def _dimension_key(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").replace("&", "and").split())


def quality_score(dimensions: Mapping[str, float]) -> float:
    """S_q from the six LongBench-Write dimensions scored 1-5: mean of ``(s - 1) * 25``, 0-100.

    Names are matched loosely ("Breadth and Depth", "breadth_and_depth", "breadth & depth").
    A missing, unknown, duplicated or out-of-range dimension is a ``ValueError`` naming it.

    >>> quality_score({d: 5 for d in QUALITY_DIMENSIONS})
    100.0
    >>> quality_score({"Relevance": 3, "Accuracy": 3, "Coherence": 3, "Clarity": 3,
    ...                "Breadth and Depth": 1, "Reading Experience": 5})
    50.0
    """
    values: dict[str, float] = {}
    for name, score in dimensions.items():
        key = _dimension_key(name)
        if key not in QUALITY_DIMENSIONS:
            raise ValueError(f"unknown quality dimension {name!r}; expected {QUALITY_DIMENSIONS}")
        if key in values:
            raise ValueError(f"quality dimension {key!r} given twice")
        if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
            raise ValueError(f"quality dimension {name!r} is not a number: {score!r}")
        if not 1 <= score <= 5:
            raise ValueError(f"quality dimension {name!r} must be scored 1-5, got {score}")
        values[key] = float(score)
    missing = [name for name in QUALITY_DIMENSIONS if name not in values]
    if missing:
        raise ValueError(f"missing quality dimensions: {missing}")
    return sum((score - 1.0) * 25.0 for score in values.values()) / len(values)


def length_bucket(required: int) -> str:
    """The label of the bucket a required length falls in, e.g. ``"[500, 2000)"``."""
    if required < 0:
        raise ValueError(f"required length cannot be negative, got {required}")
    for low, high in LENGTH_BUCKETS:
        if low <= required < high:
            return f"[{low}, {high})"
    low, high = LENGTH_BUCKETS[-1]
    return f"[{low}, {high})"


@dataclass(frozen=True)
class LongWriteRecord:
    """One LongBench-Write item after evaluation: required and produced words, and S_q if judged.

    ``quality`` is None when the quality judge failed; the item still counts for S_l.
    """

    required: int
    produced: int
    quality: float | None = None

    @classmethod
    def from_response(
        cls, required: int, response: str | None, quality: float | None = None
    ) -> LongWriteRecord:
        """Count the response's words (no response counts 0 words, scoring S_l = 0)."""
        return cls(required, count_words(response or ""), quality)

    @property
    def length(self) -> float:
        """S_l of this item."""
        return length_score(self.required, self.produced)


@dataclass(frozen=True)
class BucketRow:
    """One row of the LongBench-Write table. Scores are None when the row has no items for them."""

    bucket: str
    count: int
    length: float | None
    quality: float | None
    quality_count: int

    @property
    def overall(self) -> float | None:
        """S̄ = (S_l + S_q) / 2 of the row's averages."""
        if self.length is None or self.quality is None:
            return None
        return (self.length + self.quality) / 2.0


def _row(bucket: str, records: Sequence[LongWriteRecord]) -> BucketRow:
    qualities = [r.quality for r in records if r.quality is not None]
    return BucketRow(
        bucket=bucket,
        count=len(records),
        length=sum(r.length for r in records) / len(records) if records else None,
        quality=sum(qualities) / len(qualities) if qualities else None,
        quality_count=len(qualities),
    )


def length_quality_table(records: Sequence[LongWriteRecord]) -> list[BucketRow]:
    """S_l, S_q and S̄ per required-length bucket (every bucket, empty ones too), then overall."""
    by_bucket: dict[str, list[LongWriteRecord]] = {
        f"[{low}, {high})": [] for low, high in LENGTH_BUCKETS
    }
    for record in records:
        by_bucket[length_bucket(record.required)].append(record)
    rows = [_row(bucket, members) for bucket, members in by_bucket.items()]
    rows.append(_row("overall", list(records)))
    return rows


@dataclass(frozen=True)
class WritingBenchSummary:
    """WritingBench criteria scores aggregated as WritingBench's own ``calculate_scores.py``
    does (X-PLUG/WritingBench: ``read_scores_file`` and ``calculate_domain_scores``).

    ``per_instruction`` is each query's mean criterion score (1-10); ``per_domain`` the mean of
    its queries' means (not of their criterion scores: a query whose criteria partly failed
    weighs as much as any other); ``overall`` pools every valid criterion score, as
    WritingBench's "Overall" does; ``overall_x10`` is what the leaderboard shows. ``invalid``
    counts criteria whose judgment failed (left out of every mean).
    """

    per_instruction: dict[str, float | None]
    per_domain: dict[str, float]
    overall: float | None
    invalid: int
    scored: int

    @property
    def overall_x10(self) -> float | None:
        return None if self.overall is None else self.overall * 10.0


def writingbench_summary(
    scores: Mapping[str, Sequence[int | None]], domains: Mapping[str, str] | None = None
) -> WritingBenchSummary:
    """Aggregate criterion scores: ``scores`` maps a query id to its criteria's 1-10 scores.

    None marks a failed judgment: it is counted in ``invalid`` and left out, never a zero. A
    query with no valid score has a mean of None and no part in its domain's mean. ``domains``
    (query id -> domain) adds per-domain means of per-query means.

    >>> s = writingbench_summary({"q1": [8, 6, None], "q2": [10, 8, 9, 9]}, {"q1": "A", "q2": "A"})
    >>> s.per_instruction, s.per_domain, s.overall, s.invalid
    ({'q1': 7.0, 'q2': 9.0}, {'A': 8.0}, 8.333333333333334, 1)
    """
    per_instruction: dict[str, float | None] = {}
    domain_means: dict[str, list[float]] = {}
    every: list[int] = []
    invalid = 0
    for instruction_id, criteria in scores.items():
        valid: list[int] = []
        for position, score in enumerate(criteria):
            if score is None:
                invalid += 1
                continue
            if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 10:
                raise ValueError(
                    f"instruction {instruction_id!r}, criterion {position}: score must be an "
                    f"integer 1-10, got {score!r}"
                )
            valid.append(score)
        mean = sum(valid) / len(valid) if valid else None
        per_instruction[instruction_id] = mean
        every += valid
        if domains is not None:
            if instruction_id not in domains:
                raise ValueError(f"instruction {instruction_id!r} has no domain")
            if mean is not None:
                domain_means.setdefault(domains[instruction_id], []).append(mean)
    return WritingBenchSummary(
        per_instruction=per_instruction,
        per_domain={d: sum(v) / len(v) for d, v in sorted(domain_means.items())},
        overall=sum(every) / len(every) if every else None,
        invalid=invalid,
        scored=len(every),
    )


def rubric_piece_score(scores: Mapping[str, float], negative: Collection[str] = ()) -> float:
    """A creative-writing piece's 0-100 score from 0-20 criterion scores (EQ-Bench v3 style).

    Negative criteria ("Purple prose", "Meandering", ...) are inverted as ``20 - x`` so that
    higher is always better; the mean over criteria is multiplied by 5.

    >>> rubric_piece_score({"Imagery": 16, "Coherent": 16, "Purple prose": 4}, {"Purple prose"})
    80.0
    """
    if not scores:
        raise ValueError("a rubric piece needs at least one criterion score")
    total = 0.0
    for criterion, score in scores.items():
        if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
            raise ValueError(f"criterion {criterion!r} is not a number: {score!r}")
        if not 0 <= score <= 20:
            raise ValueError(f"criterion {criterion!r} must be scored 0-20, got {score}")
        total += 20.0 - score if criterion in negative else float(score)
    return total / len(scores) * 5.0


@dataclass(frozen=True)
class RubricPiece:
    """One judged piece: a prompt, which iteration of it, and its criterion scores (0-20)."""

    prompt_id: str
    iteration: int
    scores: Mapping[str, float]


@dataclass(frozen=True)
class RubricSummary:
    """Mean piece score (0-100) with a bootstrap 95% interval over pieces.

    ``per_prompt`` (the mean of each prompt's pieces) is for display; the score pools pieces.
    """

    score: float
    low: float
    high: float
    pieces: int
    per_prompt: dict[str, float]


def rubric_summary(
    pieces: Sequence[RubricPiece],
    negative: Collection[str] = (),
    bootstrap: int = 1000,
    seed: int = 0,
) -> RubricSummary:
    """Creative-writing rubric score over every judged piece, with a 95% interval.

    As EQ-Bench's Creative Writing Bench (``core/scoring.py``, ``compute_creative_scores``):
    each piece's score is the mean of its criteria (faults inverted), and the benchmark score
    is the mean over all pieces, every iteration of every prompt pooled; a prompt whose
    iteration failed to be judged simply has fewer pieces. The interval resamples pieces with
    replacement (``bootstrap`` times, seeded) and takes the 2.5/97.5 percentiles, as
    ``bootstrap_benchmark_stability_creative`` resamples tasks. ``bootstrap=0`` gives a
    zero-width interval.

    >>> a = RubricPiece("p1", 1, {"Voice": 8})
    >>> b = RubricPiece("p1", 2, {"Voice": 12})
    >>> rubric_summary([a, b, RubricPiece("p2", 1, {"Voice": 16})], bootstrap=0).score
    60.0
    """
    if not pieces:
        raise ValueError("no rubric pieces to summarise")
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be >= 0, got {bootstrap}")
    by_prompt: dict[str, list[float]] = {}
    values: list[float] = []
    seen: set[tuple[str, int]] = set()
    for piece in pieces:
        key = (piece.prompt_id, piece.iteration)
        if key in seen:
            raise ValueError(f"prompt {piece.prompt_id!r} iteration {piece.iteration} given twice")
        seen.add(key)
        try:
            value = rubric_piece_score(piece.scores, negative)
        except ValueError as error:
            raise ValueError(
                f"prompt {piece.prompt_id!r} iteration {piece.iteration}: {error}"
            ) from None
        by_prompt.setdefault(piece.prompt_id, []).append(value)
        values.append(value)
    per_prompt = {prompt: sum(v) / len(v) for prompt, v in sorted(by_prompt.items())}
    scores = np.array(values)
    score = float(scores.mean())
    if bootstrap == 0:
        return RubricSummary(score, score, score, len(pieces), per_prompt)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(scores), size=(bootstrap, len(scores)))
    resampled = scores[draws].mean(axis=1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return RubricSummary(score, float(low), float(high), len(pieces), per_prompt)
