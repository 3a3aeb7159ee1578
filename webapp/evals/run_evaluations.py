"""Evaluate a training run: one launch over its chosen checkpoints plus the base policy.

Every (system, benchmark) pair is an ordinary :class:`EvalRun` (generation on the GPU queue,
judging on the judge queue), linked to one :class:`RunEvaluation`. Every system of a benchmark
gets the same items: the same dataset, split and limit (items are taken in id order) or the
same long-input file. The page and the CSV show the score per checkpoint and the paper-shaped
table with 95% bootstrap intervals (:func:`run_evaluation_table`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import QuerySet

from rl_engine.evaluation.metrics import LENGTH_BUCKETS
from rl_engine.evaluation.runner import KINDS
from webapp.charts import Series
from webapp.evals import selectors
from webapp.evals.models import Benchmark, EvalRun, LongInputBenchmark, RunEvaluation
from webapp.evals.services.config import EvalConfigError
from webapp.evals.services.eval_runs import eval_run_create
from webapp.studio.models import Checkpoint, Dataset, Instruction, Run

__all__ = [
    "available_checkpoints",
    "resolve_checkpoints",
    "run_evaluation_create",
    "run_evaluation_curves",
    "run_evaluation_table",
]


def available_checkpoints(run: Run) -> QuerySet[Checkpoint]:
    """The run's checkpoints still on disk (the rotation marks the ones it deleted)."""
    return Checkpoint.objects.filter(run=run, deleted=False).order_by("step")


def resolve_checkpoints(run: Run, spec: str | Sequence[int]) -> list[Checkpoint]:
    """``"all"``, ``"last"``, ``"none"``, ``"N,M"`` or a list of steps, as checkpoints of
    ``run`` that still exist. A step that is unknown or was deleted is an error naming it and
    the steps on offer."""
    available = list(available_checkpoints(run))
    offered = ", ".join(str(c.step) for c in available) or "none"
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text == "all":
            return available
        if text == "last":
            return available[-1:]
        if text in ("", "none"):
            return []
        try:
            steps = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise EvalConfigError(
                f"checkpoints must be all, last, none or steps like 100,200; got {spec!r}"
            ) from None
    else:
        steps = [int(step) for step in spec]
    by_step = {c.step: c for c in available}
    missing = [step for step in steps if step not in by_step]
    if missing:
        raise EvalConfigError(
            f"run {run.pk} has no checkpoint at step(s) {', '.join(map(str, missing))} on disk "
            f"(available: {offered})"
        )
    return [by_step[step] for step in sorted(set(steps))]


def base_policy_of(run: Run) -> str:
    """The policy the run started from."""
    return str((run.config or {}).get("policy") or django_settings.WRITING_RL_POLICY)


@transaction.atomic
def run_evaluation_create(
    *,
    run: Run,
    benchmarks: Sequence[str],
    checkpoints: str | Sequence[int] = "all",
    include_base: bool = True,
    dataset: Dataset | None = None,
    split: str | None = None,
    long_input: LongInputBenchmark | None = None,
    limit: int | None = None,
    baseline_tier: int | None = None,
    settings: Mapping[str, Any] | None = None,
    judge: Mapping[str, Any] | None = None,
    name: str = "",
    created_by: Any = None,
    enqueue: bool = True,
) -> RunEvaluation:
    """Create (and enqueue) one evaluation per chosen system and benchmark. ``settings`` are
    the generation settings shared by every benchmark (each takes the ones it knows).
    ``split=None`` takes the held-out split when the dataset has one, else every split.
    Raises EvalConfigError naming what to change; nothing is created then."""
    chosen = list(dict.fromkeys(benchmarks))
    if not chosen:
        raise EvalConfigError("choose at least one benchmark")
    unknown = [b for b in chosen if b not in KINDS]
    if unknown:
        raise EvalConfigError(f"unknown benchmark(s) {unknown}; choose from {', '.join(KINDS)}")
    systems: list[dict[str, Any]] = []
    base = base_policy_of(run) if include_base else ""
    if include_base:
        systems.append({"system_kind": EvalRun.SystemKind.BASE_MODEL, "base_model": base})
    resolved = resolve_checkpoints(run, checkpoints)
    systems += [
        {"system_kind": EvalRun.SystemKind.CHECKPOINT, "checkpoint": c, "training_run": run}
        for c in resolved
    ]
    if not systems:
        raise EvalConfigError("nothing to evaluate: choose checkpoints or the base policy")
    dataset = dataset or run.dataset
    if split is None:
        held_out = Instruction.objects.filter(dataset=dataset, split=Instruction.Split.EVAL)
        split = Instruction.Split.EVAL if held_out.exists() else ""
    evaluation = RunEvaluation.objects.create(
        training_run=run,
        name=name.strip() or f"{run.name}: {', '.join(chosen)}",
        benchmarks=chosen,
        steps=[c.step for c in resolved],
        base_policy=base,
        dataset=dataset,
        split=split,
        long_input=long_input,
        limit=limit,
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )
    for benchmark in chosen:
        for system in systems:
            label = system.get("checkpoint")
            who = f"step {label.step}" if label is not None else "base"
            eval_run = eval_run_create(
                benchmark=benchmark,
                name=f"{evaluation.name} · {benchmark} · {who}",
                dataset=dataset,
                split=split,
                long_input=long_input,
                limit=limit,
                baseline_tier=baseline_tier if benchmark == Benchmark.PAIRWISE else None,
                settings=settings,
                judge=judge,
                created_by=created_by,
                enqueue=enqueue,
                **system,
            )
            eval_run.run_evaluation = evaluation
            eval_run.save(update_fields=["run_evaluation"])
    return evaluation


# -- reads -------------------------------------------------------------------------------------


def members(evaluation: RunEvaluation) -> list[EvalRun]:
    return list(
        evaluation.members.select_related(
            "checkpoint", "dataset", "long_input", "training_run"
        ).order_by("created_at", "id")
    )


def _step(eval_run: EvalRun) -> int:
    return eval_run.checkpoint.step if eval_run.checkpoint is not None else 0


def _system(eval_run: EvalRun) -> tuple[int, str]:
    if eval_run.checkpoint is not None:
        return eval_run.checkpoint.step, f"step {eval_run.checkpoint.step}"
    return -1, f"base · {eval_run.base_model}"


def run_evaluation_table(
    evaluation: RunEvaluation, eval_runs: Sequence[EvalRun] | None = None
) -> selectors.ComparisonTable:
    """The paper's table: one row per system (base first, then by step), one column per
    benchmark number, LongBench-Write S_l and S_q also per required-length bucket; every cell
    with its 95% bootstrap interval and N."""
    eval_runs = members(evaluation) if eval_runs is None else eval_runs
    rows: dict[tuple[int, str], selectors.ComparisonRow] = {}
    for eval_run in eval_runs:
        if eval_run.status != EvalRun.Status.SUCCEEDED:
            continue
        order, label = _system(eval_run)
        row = rows.setdefault((order, label), selectors.ComparisonRow(label, order=(order,)))
        selectors._fill(row, eval_run)
        if eval_run.benchmark == Benchmark.LONGBENCH_WRITE:
            for bucket in (eval_run.aggregates or {}).get("buckets") or []:
                if bucket.get("bucket") == "overall":
                    continue
                for measure, name in (("lbw_sl", "S_l"), ("lbw_sq", "S_q")):
                    value = bucket.get(name)
                    if isinstance(value, int | float):
                        key = f"{measure}@{bucket['bucket']}"
                        row.cells[key] = float(value)
                        row.runs[key] = eval_run
    ordered = [rows[k] for k in sorted(rows)]
    table = selectors._table(ordered)
    buckets = [f"[{low}, {high})" for low, high in LENGTH_BUCKETS]
    for measure, name in (("lbw_sl", "S_l"), ("lbw_sq", "S_q")):
        for bucket in buckets:
            key = f"{measure}@{bucket}"
            if any(key in row.cells for row in ordered):
                table.columns.append((key, f"{name} {bucket}"))
    return selectors._detail_cells(table, same_items=False)


@dataclass
class Curve:
    benchmark: str
    label: str
    series: list[Series]


def run_evaluation_curves(
    evaluation: RunEvaluation, eval_runs: Sequence[EvalRun] | None = None
) -> list[Curve]:
    """Score (0-100) against training step per benchmark, the base policy at step 0."""
    eval_runs = members(evaluation) if eval_runs is None else eval_runs
    curves = []
    for benchmark in evaluation.benchmarks:
        points = sorted(
            (float(_step(r)), float(r.score), f"eval {r.pk}")
            for r in eval_runs
            if r.benchmark == benchmark and r.status == EvalRun.Status.SUCCEEDED
            and r.score is not None
        )  # fmt: skip
        if points:
            series = Series(
                Benchmark(benchmark).label,
                [(x, y) for x, y, _l in points],
                [lab for *_p, lab in points],
            )
            curves.append(Curve(benchmark, Benchmark(benchmark).label, [series]))
    return curves
