"""Create, enqueue and cancel evaluation runs."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from rl_engine.evaluation.runner import KINDS, EvalSettings
from rl_engine.judging.types import JudgeSpec
from webapp.evals.models import Benchmark, EvalItemResult, EvalRun, LongInputBenchmark
from webapp.evals.services.config import EvalConfigError, build_judge, build_settings
from webapp.evals.services.jobs import EVAL_GENERATE_KIND
from webapp.evals.services.jobs import eval_run_enqueue as enqueue
from webapp.studio.models import AuditLog, Checkpoint, Dataset, Instruction, Run
from webapp.studio.services.leases import lease_retry


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
            has = sorted(
                set(Instruction.objects.filter(dataset=dataset).values_list("split", flat=True))
            )
            raise EvalConfigError(
                f"dataset {dataset.name!r} has no instruction in split {split or '(any)'!r}; "
                f"its splits: {', '.join(has) or 'none'}"
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
    """Send the generation task when the current transaction commits (see
    :mod:`webapp.evals.services.jobs`)."""
    enqueue(eval_run=eval_run)


def eval_run_cancel(*, eval_run: EvalRun) -> bool:
    """Cancel an active evaluation; the running phase stops writing at its next save."""
    return (
        EvalRun.objects.filter(pk=eval_run.pk, status__in=EvalRun.ACTIVE).update(
            status=EvalRun.Status.CANCELLED, finished_at=timezone.now()
        )
        == 1
    )


@transaction.atomic
def eval_run_retry(*, eval_run: EvalRun, user: Any = None) -> bool:
    """Queue a failed evaluation again (the same row, a new lease epoch). What it stored is
    kept: generation writes only the missing responses and judging judges the responses not
    judged yet — including those whose judgment failed, which are judged again. Audited as
    ``eval_retry``; False when it had not failed."""
    before = EvalRun.objects.filter(pk=eval_run.pk).values("error", "epoch").first()
    retried = lease_retry(
        EVAL_GENERATE_KIND, eval_run.pk, failed=(EvalRun.Status.FAILED,),
        to=EvalRun.Status.QUEUED, error="", finished_at=None,
    )  # fmt: skip
    if not retried or before is None:
        return False
    again = EvalItemResult.objects.filter(eval_run=eval_run, judged=True, score__isnull=True)
    judged_again = again.update(judged=False)
    AuditLog.objects.create(
        actor=user if getattr(user, "is_authenticated", False) else None,
        action="eval_retry",
        details={
            "eval_run": eval_run.pk, "epoch_before": before["epoch"],
            "error_before": before["error"][-1000:], "judged_again": judged_again,
        },
    )  # fmt: skip
    return True
