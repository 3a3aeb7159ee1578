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
from collections.abc import Mapping, Sequence
from typing import Any

from rl_engine.evaluation.core import (
    KINDS,
    Criterion,
    EvalItem,
    EvalReport,
    EvalSettings,
    Evaluators,
    Generated,
    Generator,
    ItemResult,
    Pairs,
    Progress,
    Tracker,
)
from rl_engine.evaluation.kinds import AGGREGATES, ITEM_JUDGES
from rl_engine.evaluation.kinds.creative import DEFAULT_CREATIVE_CRITERIA
from rl_engine.evaluation.longinput import build_prompt
from rl_engine.judging._aio import run_sync
from rl_engine.judging.scorer import PointwiseScorer

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
    "aggregate_results",
    "evaluate",
    "generate_responses",
    "judge_items_sync",
    "judge_responses",
    "judge_responses_sync",
    "model_generator",
]

# -- generation ---------------------------------------------------------------------------------


def model_generator(
    model: Any,
    tokenizer: Any,
    settings: EvalSettings,
    generation_kwargs: Mapping[str, Any] | None = None,
) -> Generator:
    """A generator that writes with ``rl_engine.models.generate`` (the engine's own, as in
    training), batched by ``settings.batch_size``."""
    # Loaded on first use: rl_engine.models imports torch, which judging-only callers skip.
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


def _per_domain(pairs: Pairs, results: Sequence[ItemResult]) -> dict[str, float]:
    by_domain: dict[str, list[float]] = {}
    for (item, _g), result in zip(pairs, results, strict=True):
        if result.score is not None:
            by_domain.setdefault(item.domain or "(none)", []).append(result.score)
    return {d: statistics.fmean(v) for d, v in sorted(by_domain.items())}


def _pairs(items: Sequence[EvalItem], generated: Sequence[Generated]) -> Pairs:
    by_id = {item.item_id: item for item in items}
    unknown = [g.item_id for g in generated if g.item_id not in by_id]
    if unknown:
        raise ValueError(f"responses for unknown item(s): {unknown[:5]}")
    return [(by_id[g.item_id], g) for g in generated]


async def judge_items(
    items: Sequence[EvalItem],
    generated: Sequence[Generated],
    settings: EvalSettings,
    evaluators: Evaluators,
    progress: Progress | None = None,
) -> list[ItemResult]:
    """Judge ``generated`` (any part of an evaluation's responses): one result per response,
    in its order, with no aggregation. A failed judgment is a result with ``score`` None and
    its ``error``, never a zero."""
    pairs = _pairs(items, generated)
    tracker = Tracker(progress)
    results = await ITEM_JUDGES[settings.kind](pairs, evaluators, settings, tracker)
    if tracker.total == 0 and progress is not None:
        await asyncio.to_thread(progress, "judging", len(results), len(results))
    return results


def judge_items_sync(
    items: Sequence[EvalItem],
    generated: Sequence[Generated],
    settings: EvalSettings,
    evaluators: Evaluators,
    progress: Progress | None = None,
) -> list[ItemResult]:
    """Blocking :func:`judge_items`."""
    return run_sync(judge_items(items, generated, settings, evaluators, progress))


def aggregate_results(
    items: Sequence[EvalItem],
    generated: Sequence[Generated],
    results: Sequence[ItemResult],
    settings: EvalSettings,
) -> dict[str, Any]:
    """The kind's aggregates over judged responses (``results[i]`` judges ``generated[i]``),
    however many times they were judged apart; always with ``score`` (0-100 or None),
    ``items``, ``errors`` and ``domain_scores``."""
    if len(results) != len(generated):
        raise ValueError(f"{len(results)} results for {len(generated)} responses")
    pairs = _pairs(items, generated)
    aggregates = AGGREGATES[settings.kind](pairs, results, settings)
    aggregates["items"] = len(results)
    aggregates["errors"] = sum(1 for r in results if r.error)
    aggregates["domain_scores"] = _per_domain(pairs, results)
    return aggregates


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
    results = await judge_items(items, generated, settings, evaluators, progress)
    return results, aggregate_results(items, generated, results, settings)


def judge_responses_sync(
    items: Sequence[EvalItem],
    generated: Sequence[Generated],
    settings: EvalSettings,
    evaluators: Evaluators,
    progress: Progress | None = None,
) -> tuple[list[ItemResult], dict[str, Any]]:
    """Blocking :func:`judge_responses` (for Celery tasks and scripts)."""
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
