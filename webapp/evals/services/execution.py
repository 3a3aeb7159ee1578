"""The two phases of an evaluation run (see the package docstring): generation, then judging."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any

from django.db import connection
from django.utils import timezone

from rl_engine.evaluation.evaluators import make_evaluators
from rl_engine.evaluation.runner import (
    EvalItem,
    Generated,
    ItemResult,
    aggregate_results,
    generate_responses,
    judge_items_sync,
    model_generator,
)
from webapp.evals.models import EvalItemResult, EvalRun
from webapp.evals.services.config import (
    EvalConfigError,
    build_judge,
    build_settings,
    check_system_model,
)
from webapp.evals.services.items import eval_items
from webapp.studio.services.leases import Lease, LeaseLost, lease_claim

# The two phases as lease claims: generation takes a queued run (or one whose generating
# worker was lost); judging takes a run handed over by generation (``judging`` with no
# holder) or one whose judging worker was lost. Cancelling sets ``cancelled``, which ends
# either phase's lease: its next write raises ``LeaseLost``.
GENERATE_PHASE: dict[str, Any] = {
    "waiting": (EvalRun.Status.QUEUED,),
    "running": (EvalRun.Status.GENERATING,),
    "cancelled": None,
}
JUDGE_PHASE: dict[str, Any] = {
    "waiting": (),
    "running": (EvalRun.Status.JUDGING,),
    "cancelled": None,
}

log = logging.getLogger(__name__)


def _fail(eval_run_id: int, error: BaseException, lease: Lease | None = None) -> None:
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    log.exception("evaluation %s failed", eval_run_id)
    fields = {"error": detail[:5000], "finished_at": timezone.now()}
    if lease is not None:
        lease.finish(EvalRun.Status.FAILED, **fields)
        return
    EvalRun.objects.filter(pk=eval_run_id, status__in=EvalRun.ACTIVE).update(
        status=EvalRun.Status.FAILED, **fields
    )


def _progress_writer(eval_run_id: int, low: float, high: float, lease: Lease) -> Any:
    """Progress into the run's row, fenced by ``lease`` (a write that finds the lease gone
    marks it lost: the phase stops at its next check)."""
    last = [0.0]

    def write(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 1.0:
            return  # at most one write a second
        last[0] = now
        share = low + (high - low) * (done / total if total else 1.0)
        with contextlib.suppress(LeaseLost):  # raised again by the phase's next check
            lease.update(progress=share)
        if threading.current_thread() is not threading.main_thread():
            connection.close()  # judging reports from short-lived helper threads

    return write


def _system_model(eval_run: EvalRun) -> tuple[Any, Any]:
    # Loaded here: rl_engine.models imports torch, which only generating workers need.
    from rl_engine.models import load_policy

    return load_policy(check_system_model(eval_run))  # under the model roots, checked now


def eval_run_generate(eval_run_id: int, *, worker: str = "") -> bool:
    """Phase 1: claim the run (a queued run, or one whose generating worker was lost), write
    the system's responses and store them unjudged, a chunk of items at a time (a resumed
    phase generates only the items without stored responses), then hand the run to judging.

    Returns True when the responses are stored and the run waits for judging; False when
    the run was not claimed (a re-delivered message), failed, or the lease was lost (taken
    over or cancelled: nothing more was written).
    """
    lease = lease_claim(EvalRun, eval_run_id, worker=worker, **GENERATE_PHASE)
    if lease is None:
        return False
    try:
        with lease.heartbeat():
            eval_run = EvalRun.objects.select_related("checkpoint").get(pk=eval_run_id)
            settings = build_settings(eval_run.benchmark, eval_run.settings)
            items, skipped = eval_items(eval_run)
            if not items:
                raise EvalConfigError(f"no item to evaluate (skipped: {skipped or 'none'})")
            stored = set(
                EvalItemResult.objects.filter(eval_run=eval_run).values_list("item_id", flat=True)
            )
            wanted = {item.item_id for item in items}
            todo = [item for item in items if item.item_id not in stored]
            # Before the first write: the stored judge and model may have been edited since
            # the form checked them; a refused run fails here with the reason, having
            # generated nothing (its judging phase would refuse the judge anyway).
            build_judge(eval_run.judge)
            if any(item.response is None for item in todo):
                check_system_model(eval_run)
            with lease.fenced():  # results of items no longer asked for go
                EvalItemResult.objects.filter(eval_run=eval_run).exclude(
                    item_id__in=wanted
                ).delete()
            started = time.perf_counter()
            generator = tokenizer = None
            if any(item.response is None for item in todo):
                model, tokenizer = _system_model(eval_run)
                generator = model_generator(model, tokenizer, settings)
            progress = _progress_writer(eval_run_id, 0.0, 0.5, lease)
            chunk = max(settings.batch_size, 1) * 4
            for start in range(0, len(todo), chunk):
                lease.check()
                part = todo[start : start + chunk]
                generated = generate_responses(part, settings, generator, tokenizer)
                with lease.fenced():
                    _store_generated(eval_run, part, generated)
                done = len(items) - len(todo) + start + len(part)
                progress("generation", done, len(items))
            generation_s = time.perf_counter() - started
        handed = lease.finish(
            EvalRun.Status.JUDGING, generation_s=generation_s, progress=0.5,
            aggregates={"skipped": skipped} if skipped else {},
            claimed_by="", heartbeat_at=timezone.now(), enqueued_at=None,
        )  # fmt: skip
        return handed
    except LeaseLost as error:
        log.warning("evaluation %s: %s; this worker stops", eval_run_id, error)
        return False
    except Exception as error:  # any failure ends the run, with its reason
        _fail(eval_run_id, error, lease)
        return False


def _store_generated(eval_run: EvalRun, items: list[EvalItem], generated: list[Generated]) -> None:
    by_id = {item.item_id: item for item in items}
    long_input = bool(eval_run.long_input_id)
    # A chunk is stored whole; a retried chunk replaces what an earlier attempt left of it.
    EvalItemResult.objects.filter(eval_run=eval_run, item_id__in=list(by_id)).delete()
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


def _result_of(row: EvalItemResult) -> ItemResult:
    return ItemResult(
        row.item_id, row.iteration, row.response, row.produced_words, row.score,
        details=dict(row.details or {}), error=row.error or None,
        judge_latency_s=row.judge_latency_s or 0.0,
    )  # fmt: skip


def _generated_of(row: EvalItemResult) -> Generated:
    return Generated(
        row.item_id, row.iteration, row.response, row.context_tokens, row.truncated_tokens
    )


def _store_judged(rows: list[EvalItemResult], results: list[ItemResult]) -> None:
    for row, result in zip(rows, results, strict=True):
        row.produced_words = result.produced_words
        row.score = result.score
        row.details = _json_safe(result.details)
        row.error = result.error or ""
        row.judge_latency_s = result.judge_latency_s
        row.judge_attempts = result.judge_attempts
        row.judge_prompt_tokens = result.judge_usage.prompt_tokens
        row.judge_completion_tokens = result.judge_usage.completion_tokens
        row.judged = True
    EvalItemResult.objects.bulk_update(
        rows,
        ["produced_words", "score", "details", "error", "judge_latency_s", "judged",
         "judge_attempts", "judge_prompt_tokens", "judge_completion_tokens"],
        batch_size=500,
    )  # fmt: skip


def eval_run_judge(eval_run_id: int, evaluators: Any = None, *, worker: str = "") -> bool:
    """Phase 2: claim the judging phase, judge the responses not judged yet a chunk at a time
    (each chunk's results stored as they come, fenced: a resumed phase pays only for the
    missing items, and a worker taken over stores nothing), then aggregate every stored
    result and finish.

    A run whose every judgment failed ends ``failed`` with the count and the first error
    (its per-item errors stay visible), never as a score of zero. ``evaluators`` overrides
    the run's judge spec (tests and scripts). Returns True when the run succeeded.
    """
    lease = lease_claim(EvalRun, eval_run_id, worker=worker, **JUDGE_PHASE)
    if lease is None:
        return False
    eval_run = EvalRun.objects.get(pk=eval_run_id)
    try:
        with lease.heartbeat():
            settings = build_settings(eval_run.benchmark, eval_run.settings)
            items, _skipped = eval_items(eval_run)
            rows = list(EvalItemResult.objects.filter(eval_run=eval_run).order_by("id"))
            present = {row.item_id for row in rows}
            items = [item for item in items if item.item_id in present]
            todo = [row for row in rows if not row.judged]
            if todo and evaluators is None:
                evaluators = make_evaluators(build_judge(eval_run.judge))
            progress = _progress_writer(eval_run_id, 0.5, 1.0, lease)
            chunk = max(settings.batch_size, 1) * 4
            started = time.perf_counter()
            for start in range(0, len(todo), chunk):
                lease.check()
                part = todo[start : start + chunk]
                results = judge_items_sync(
                    items, [_generated_of(row) for row in part], settings, evaluators
                )
                with lease.fenced():
                    _store_judged(part, results)
                progress("judging", len(rows) - len(todo) + start + len(part), len(rows))
            judging_s = (eval_run.judging_s or 0.0) + time.perf_counter() - started
            rows = list(EvalItemResult.objects.filter(eval_run=eval_run).order_by("id"))
            aggregates = aggregate_results(
                items, [_generated_of(row) for row in rows], [_result_of(r) for r in rows],
                settings,
            )  # fmt: skip
            aggregates = {**(eval_run.aggregates or {}), **_json_safe(aggregates)}
            scored = sum(1 for row in rows if row.score is not None)
            fields: dict[str, Any] = {
                "aggregates": aggregates, "judging_s": judging_s, "progress": 1.0,
                "finished_at": timezone.now(),
            }  # fmt: skip
            if rows and scored == 0:
                first = next((row.error for row in rows if row.error), "no score")
                error = f"0 of {len(rows)} responses judged: {len(rows)} failed; first error: "
                lease.finish(EvalRun.Status.FAILED, error=(error + first)[:5000], **fields)
                return False
            return lease.finish(EvalRun.Status.SUCCEEDED, error="", **fields)
    except LeaseLost as error:
        log.warning("evaluation %s: %s; this worker stops", eval_run_id, error)
        return False
    except Exception as error:  # any failure ends the run, with its reason
        _fail(eval_run_id, error, lease)
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
