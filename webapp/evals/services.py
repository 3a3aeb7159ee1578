"""Evaluation writes: create, enqueue, cancel and execute evaluation runs; import long-input
benchmark files.

An evaluation runs in two phases, each claimed through the database (one UPDATE that must
change exactly one row), so a re-delivered task message does nothing twice:

1. ``eval_run_generate``: QUEUED -> GENERATING; the system writes its responses (stored per
   item, unjudged) -> JUDGING. On a GPU worker (``generate_*`` tasks route there).
2. ``eval_run_judge``: judges the stored responses, stores scores and aggregates ->
   SUCCEEDED. On a judge worker (``judge_*`` tasks).

A failure in either phase marks the run FAILED with the error; stored responses are kept.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import fields as dataclass_fields
from typing import Any

from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone

from rl_engine.evaluation.longinput import LongInputItem
from rl_engine.evaluation.runner import (
    KINDS,
    Criterion,
    EvalItem,
    EvalSettings,
    Generated,
)
from rl_engine.judging.types import JudgeSpec
from webapp.evals.models import (
    Benchmark,
    EvalItemResult,
    EvalRun,
    LongInputBenchmark,
    LongInputQuestion,
)
from webapp.studio.models import Checkpoint, Dataset, Instruction, Reference, Run

log = logging.getLogger(__name__)


class EvalConfigError(ValueError):
    """The evaluation cannot be created as asked; the message says what to change."""


class BenchmarkFileError(ValueError):
    """A benchmark file is invalid; the message names file, line and field."""


# -- settings and judge ------------------------------------------------------------------------


def default_judge() -> JudgeSpec:
    """The studio's default judge, from settings (``WRITING_RL_JUDGE_*``)."""
    kind = django_settings.WRITING_RL_JUDGE_KIND
    return JudgeSpec(
        kind=kind,
        model=django_settings.WRITING_RL_JUDGE_MODEL,
        base_url=django_settings.WRITING_RL_JUDGE_BASE_URL,
        api_key_env=django_settings.WRITING_RL_JUDGE_API_KEY_ENV,
    )


def build_settings(benchmark: str, values: Mapping[str, Any] | None) -> EvalSettings:
    known = {f.name for f in dataclass_fields(EvalSettings)} - {"kind"}
    payload = dict(values or {})
    payload.pop("kind", None)
    unknown = sorted(set(payload) - known)
    if unknown:
        raise EvalConfigError(f"unknown evaluation setting(s): {', '.join(unknown)}")
    try:
        return EvalSettings(kind=benchmark, **payload)
    except (TypeError, ValueError) as error:
        raise EvalConfigError(str(error)) from error


def build_judge(values: Mapping[str, Any] | JudgeSpec | None) -> JudgeSpec:
    if values is None:
        return default_judge()
    if isinstance(values, JudgeSpec):
        return values
    try:
        return JudgeSpec.from_dict(values)
    except (TypeError, ValueError) as error:
        raise EvalConfigError(f"judge: {error}") from error


# -- create, enqueue, cancel -------------------------------------------------------------------


@transaction.atomic
def eval_run_create(
    *,
    benchmark: str,
    system_kind: str,
    name: str = "",
    checkpoint: Checkpoint | None = None,
    base_model: str = "",
    reference_tier: int | None = None,
    training_run: Run | None = None,
    dataset: Dataset | None = None,
    split: str = Instruction.Split.EVAL,
    long_input: LongInputBenchmark | None = None,
    baseline_tier: int | None = None,
    baseline_run: EvalRun | None = None,
    limit: int | None = None,
    settings: Mapping[str, Any] | EvalSettings | None = None,
    judge: Mapping[str, Any] | JudgeSpec | None = None,
    created_by: Any = None,
    enqueue: bool = True,
) -> EvalRun:
    """Validate and create an evaluation run; enqueue its generation once the transaction
    commits. Raises EvalConfigError naming what to change."""
    if benchmark not in KINDS:
        raise EvalConfigError(f"benchmark must be one of {', '.join(KINDS)}; got {benchmark!r}")
    eval_settings = (
        settings if isinstance(settings, EvalSettings) else build_settings(benchmark, settings)
    )
    if eval_settings.kind != benchmark:
        raise EvalConfigError(f"settings are for {eval_settings.kind}, not {benchmark}")
    spec = build_judge(judge)
    if system_kind == EvalRun.SystemKind.CHECKPOINT:
        if checkpoint is None:
            raise EvalConfigError("choose the checkpoint to evaluate")
        training_run = training_run or checkpoint.run
    elif system_kind == EvalRun.SystemKind.BASE_MODEL:
        base_model = base_model.strip() or django_settings.WRITING_RL_POLICY
    elif system_kind == EvalRun.SystemKind.REFERENCE_TIER:
        if reference_tier is None or reference_tier < 0:
            raise EvalConfigError("a reference-tier system needs a tier (0 = the weakest)")
        if benchmark == Benchmark.LONGBENCH_V2:
            raise EvalConfigError("references cannot answer long-input questions; pick a model")
    else:
        raise EvalConfigError(f"unknown system kind {system_kind!r}")
    if benchmark == Benchmark.LONGBENCH_V2:
        if long_input is None:
            raise EvalConfigError("a long-input evaluation needs an imported benchmark file")
        if not long_input.questions.exists():
            raise EvalConfigError(f"benchmark file {long_input.name!r} has no questions")
        dataset = None
    else:
        if dataset is None:
            raise EvalConfigError("choose the dataset whose instructions to evaluate on")
        instructions = Instruction.objects.filter(dataset=dataset)
        if split:
            instructions = instructions.filter(split=split)
        if not instructions.exists():
            raise EvalConfigError(
                f"dataset {dataset.name!r} has no instruction in split {split or '(any)'!r}"
            )
        long_input = None
    if benchmark == Benchmark.PAIRWISE:
        if (baseline_tier is None) == (baseline_run is None):
            raise EvalConfigError("pairwise needs exactly one baseline: a reference tier or a run")
        if baseline_run is not None and baseline_run.status != EvalRun.Status.SUCCEEDED:
            raise EvalConfigError(f"baseline evaluation {baseline_run.pk} has not succeeded")
    else:
        baseline_tier, baseline_run = None, None
    if limit is not None and limit < 1:
        raise EvalConfigError("limit must be at least 1 item (or empty for all)")
    eval_run = EvalRun.objects.create(
        name=name.strip() or f"{benchmark} · {system_kind}",
        benchmark=benchmark,
        system_kind=system_kind,
        checkpoint=checkpoint if system_kind == EvalRun.SystemKind.CHECKPOINT else None,
        base_model=base_model if system_kind == EvalRun.SystemKind.BASE_MODEL else "",
        reference_tier=reference_tier if system_kind == EvalRun.SystemKind.REFERENCE_TIER else None,
        training_run=training_run,
        dataset=dataset,
        split=split if dataset is not None else "",
        long_input=long_input,
        baseline_tier=baseline_tier,
        baseline_run=baseline_run,
        limit=limit,
        settings=eval_settings.to_dict(),
        judge=spec.to_dict(),
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
        task_id=str(uuid.uuid4()),
    )
    if enqueue:
        eval_run_enqueue(eval_run=eval_run)
    return eval_run


def eval_run_enqueue(*, eval_run: EvalRun) -> None:
    """Send the generation task when the current transaction commits."""
    from workers.tasks.evaluation import generate_eval_run

    pk, task_id = eval_run.pk, eval_run.task_id or str(uuid.uuid4())
    transaction.on_commit(lambda: generate_eval_run.apply_async(args=[pk], task_id=task_id))


def eval_run_cancel(*, eval_run: EvalRun) -> bool:
    """Cancel an active evaluation; the running phase stops writing at its next save."""
    return (
        EvalRun.objects.filter(pk=eval_run.pk, status__in=EvalRun.ACTIVE).update(
            status=EvalRun.Status.CANCELLED, finished_at=timezone.now()
        )
        == 1
    )


# -- items -------------------------------------------------------------------------------------


def instruction_criteria(criteria: Any) -> tuple[Criterion, ...]:
    """An Instruction's criteria as runner criteria: a WritingBench checklist
    (``name``, ``criteria_description``), rubric entries (``name``, ``description``,
    ``negative``), plain strings, or one text."""
    if criteria in (None, "", []):
        return ()
    if isinstance(criteria, str):
        return (Criterion(criteria.strip()),)
    if isinstance(criteria, list):
        found = []
        for entry in criteria:
            if isinstance(entry, str):
                found.append(Criterion(entry.strip()))
            elif isinstance(entry, dict):
                name = str(entry.get("name", "")).strip()
                description = str(
                    entry.get("criteria_description", entry.get("description", ""))
                ).strip()
                found.append(
                    Criterion(name or description, description if name else "",
                              bool(entry.get("negative", False)))
                )  # fmt: skip
        return tuple(c for c in found if c.name)
    return (Criterion(json.dumps(criteria, ensure_ascii=False)),)


def _question_item(question: LongInputQuestion) -> LongInputItem:
    choices = list(question.choices)
    return LongInputItem(
        item_id=str(question.pk),
        context=question.context,
        question=question.question,
        choices=(choices[0], choices[1], choices[2], choices[3]),
        answer=question.answer,
        difficulty=question.difficulty,
        length=question.length,
        domain=question.domain,
    )


def eval_items(eval_run: EvalRun) -> tuple[list[EvalItem], dict[str, Any]]:
    """The run's items, with the system's answers already filled in for a reference tier and
    the baseline for pairwise. Returns the items and ``skipped`` counts with reasons."""
    skipped: dict[str, int] = {}
    if eval_run.long_input_id:
        questions = LongInputQuestion.objects.filter(benchmark_id=eval_run.long_input_id)
        if eval_run.limit:
            questions = questions[: eval_run.limit]
        items = [
            EvalItem(str(q.pk), q.question, domain=q.domain, long_input=_question_item(q))
            for q in questions
        ]
        return items, skipped
    instructions = Instruction.objects.filter(dataset_id=eval_run.dataset_id).order_by("id")
    if eval_run.split:
        instructions = instructions.filter(split=eval_run.split)
    if eval_run.limit:
        instructions = instructions[: eval_run.limit]
    rows = list(instructions)
    ids = [row.pk for row in rows]
    tiers = [t for t in (eval_run.reference_tier, eval_run.baseline_tier) if t is not None]
    references: dict[tuple[int, int], str] = {}
    if tiers:
        for ref in Reference.objects.filter(instruction_id__in=ids, tier__in=tiers):
            references[(ref.instruction_id, ref.tier)] = ref.text  # type: ignore[index]
    baseline_responses: dict[str, str] = {}
    if eval_run.baseline_run_id:
        baseline_responses = dict(
            EvalItemResult.objects.filter(
                eval_run_id=eval_run.baseline_run_id, iteration=0
            ).values_list("item_id", "response")
        )
    items = []
    for row in rows:
        item = EvalItem(
            item_id=str(row.pk),
            prompt=row.prompt,
            domain=row.domain,
            required_words=row.required_words,
            criteria=instruction_criteria(row.criteria),
        )
        if eval_run.reference_tier is not None:
            text = references.get((row.pk, eval_run.reference_tier))
            if text is None:
                skipped["no reference at the system's tier"] = (
                    skipped.get("no reference at the system's tier", 0) + 1
                )
                continue
            item.response = text
        if eval_run.benchmark == Benchmark.PAIRWISE:
            if eval_run.baseline_tier is not None:
                item.baseline = references.get((row.pk, eval_run.baseline_tier))
            else:
                item.baseline = baseline_responses.get(str(row.pk))
            if item.baseline is None:
                skipped["no baseline response"] = skipped.get("no baseline response", 0) + 1
                continue
        items.append(item)
    return items, skipped


# -- execution ---------------------------------------------------------------------------------


def _claim(eval_run_id: int, before: str, after: str, **extra: Any) -> bool:
    return EvalRun.objects.filter(pk=eval_run_id, status=before).update(status=after, **extra) == 1


def _fail(eval_run_id: int, error: BaseException) -> None:
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    log.exception("evaluation %s failed", eval_run_id)
    EvalRun.objects.filter(pk=eval_run_id, status__in=EvalRun.ACTIVE).update(
        status=EvalRun.Status.FAILED, error=detail[:5000], finished_at=timezone.now()
    )


def _progress_writer(eval_run_id: int, low: float, high: float) -> Any:
    last = [0.0]

    def write(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 1.0:
            return  # at most one write a second
        last[0] = now
        share = low + (high - low) * (done / total if total else 1.0)
        EvalRun.objects.filter(pk=eval_run_id, status__in=EvalRun.ACTIVE).update(progress=share)
        if threading.current_thread() is not threading.main_thread():
            connection.close()  # judging reports from short-lived helper threads

    return write


def _system_model(eval_run: EvalRun) -> tuple[Any, Any]:
    from rl_engine.models import load_policy

    if eval_run.system_kind == EvalRun.SystemKind.CHECKPOINT:
        assert eval_run.checkpoint is not None
        return load_policy(eval_run.checkpoint.path)
    return load_policy(eval_run.base_model)


def eval_run_generate(eval_run_id: int) -> bool:
    """Phase 1: claim the run, write the system's responses, store them unjudged.

    Returns True when the responses are stored and the run waits for judging; False when
    the run was not queued (a re-delivered message) or failed.
    """
    if not _claim(
        eval_run_id, EvalRun.Status.QUEUED, EvalRun.Status.GENERATING, started_at=timezone.now()
    ):
        return False
    try:
        eval_run = EvalRun.objects.select_related("checkpoint").get(pk=eval_run_id)
        settings = build_settings(eval_run.benchmark, eval_run.settings)
        items, skipped = eval_items(eval_run)
        if not items:
            raise EvalConfigError(f"no item to evaluate (skipped: {skipped or 'none'})")
        started = time.perf_counter()
        generator = tokenizer = None
        if any(item.response is None for item in items):
            from rl_engine.evaluation.runner import model_generator

            model, tokenizer = _system_model(eval_run)
            generator = model_generator(model, tokenizer, settings)
        from rl_engine.evaluation.runner import generate_responses

        generated = generate_responses(
            items, settings, generator, tokenizer, _progress_writer(eval_run_id, 0.0, 0.5)
        )
        generation_s = time.perf_counter() - started
        _store_generated(eval_run, items, generated)
        return _claim(
            eval_run_id, EvalRun.Status.GENERATING, EvalRun.Status.JUDGING,
            generation_s=generation_s, progress=0.5,
            aggregates={"skipped": skipped} if skipped else {},
        )  # fmt: skip
    except Exception as error:  # any failure ends the run, with its reason
        _fail(eval_run_id, error)
        return False


@transaction.atomic
def _store_generated(eval_run: EvalRun, items: list[EvalItem], generated: list[Generated]) -> None:
    by_id = {item.item_id: item for item in items}
    long_input = bool(eval_run.long_input_id)
    EvalItemResult.objects.filter(eval_run=eval_run).delete()  # a retried phase starts clean
    EvalItemResult.objects.bulk_create(
        [
            EvalItemResult(
                eval_run=eval_run,
                item_id=g.item_id,
                iteration=g.iteration,
                instruction_id=None if long_input else int(g.item_id),
                question_id=int(g.item_id) if long_input else None,
                domain=by_id[g.item_id].domain[:200],
                required_words=by_id[g.item_id].required_words,
                response=g.response,
                context_tokens=g.context_tokens,
                truncated_tokens=g.truncated_tokens,
            )
            for g in generated
        ],
        batch_size=500,
    )


def eval_run_judge(eval_run_id: int, evaluators: Any = None) -> bool:
    """Phase 2: judge the stored responses, store each item's score and the aggregates.

    ``evaluators`` overrides the run's judge spec (tests and scripts). Returns True when the
    run succeeded.
    """
    eval_run = EvalRun.objects.filter(pk=eval_run_id, status=EvalRun.Status.JUDGING).first()
    if eval_run is None:
        return False
    try:
        from rl_engine.evaluation.evaluators import make_evaluators
        from rl_engine.evaluation.runner import judge_responses_sync

        settings = build_settings(eval_run.benchmark, eval_run.settings)
        items, _skipped = eval_items(eval_run)
        rows = list(EvalItemResult.objects.filter(eval_run=eval_run).order_by("id"))
        present = {row.item_id for row in rows}
        items = [item for item in items if item.item_id in present]
        generated = [
            Generated(row.item_id, row.iteration, row.response, row.context_tokens,
                      row.truncated_tokens)
            for row in rows
        ]  # fmt: skip
        if evaluators is None:
            evaluators = make_evaluators(build_judge(eval_run.judge))
        started = time.perf_counter()
        results, aggregates = judge_responses_sync(
            items, generated, settings, evaluators, _progress_writer(eval_run_id, 0.5, 1.0)
        )
        judging_s = time.perf_counter() - started
        with transaction.atomic():
            for row, result in zip(rows, results, strict=True):
                row.produced_words = result.produced_words
                row.score = result.score
                row.details = _json_safe(result.details)
                row.error = result.error or ""
                row.judge_latency_s = result.judge_latency_s
                row.judged = True
            EvalItemResult.objects.bulk_update(
                rows,
                ["produced_words", "score", "details", "error", "judge_latency_s", "judged"],
                batch_size=500,
            )
            aggregates = {**(eval_run.aggregates or {}), **_json_safe(aggregates)}
            return _claim(
                eval_run_id, EvalRun.Status.JUDGING, EvalRun.Status.SUCCEEDED,
                aggregates=aggregates, judging_s=judging_s, progress=1.0,
                finished_at=timezone.now(),
            )  # fmt: skip
    except Exception as error:  # any failure ends the run, with its reason
        _fail(eval_run_id, error)
        return False


def eval_run_execute(eval_run_id: int, evaluators: Any = None) -> EvalRun:
    """Both phases in this process (scripts, tests, the demo without workers)."""
    if eval_run_generate(eval_run_id):
        eval_run_judge(eval_run_id, evaluators)
    return EvalRun.objects.get(pk=eval_run_id)


def _json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSONField rejects them) and tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


# -- long-input benchmark import ---------------------------------------------------------------


@transaction.atomic
def long_input_import(
    *, name: str, lines: Iterable[bytes | str], filename: str, created_by: Any = None
) -> LongInputBenchmark:
    """Import a LongBench v2-style JSONL file (one question per line: ``_id``/``item_id``,
    ``context``, ``question``, ``choice_A``..``choice_D`` or ``choices``, ``answer``,
    ``difficulty``, ``length``, optional ``domain``). All or nothing: the first bad line
    raises BenchmarkFileError naming file, line and field, and nothing is saved."""
    name = name.strip() or filename
    if LongInputBenchmark.objects.filter(name=name).exists():
        raise BenchmarkFileError(f"a benchmark named {name!r} exists already; choose another name")
    questions: list[LongInputItem] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", errors="strict") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        where = f"{filename}:{number}"
        try:
            row = json.loads(text)
        except json.JSONDecodeError as error:
            raise BenchmarkFileError(f"{where}: not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise BenchmarkFileError(f"{where}: expected a JSON object")
        try:
            item = LongInputItem.from_dict(row, where)
        except ValueError as error:
            raise BenchmarkFileError(str(error)) from None
        if item.item_id in seen:
            raise BenchmarkFileError(
                f"{where}: field 'item_id' {item.item_id!r} repeats line {seen[item.item_id]}"
            )
        seen[item.item_id] = number
        questions.append(item)
    if not questions:
        raise BenchmarkFileError(f"{filename}: no question found (one JSON object per line)")
    benchmark = LongInputBenchmark.objects.create(
        name=name[:200],
        source_filename=filename[:500],
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )
    LongInputQuestion.objects.bulk_create(
        [
            LongInputQuestion(
                benchmark=benchmark, external_id=q.item_id[:200], context=q.context,
                question=q.question, choices=list(q.choices), answer=q.answer,
                difficulty=q.difficulty, length=q.length, domain=q.domain[:200],
            )
            for q in questions
        ],
        batch_size=200,
    )  # fmt: skip
    return benchmark
