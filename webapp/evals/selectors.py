"""Evaluation reads: lists, the comparison table in the paper's shape, chart data, CSV rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from webapp.evals.charts import Series
from webapp.evals.models import AblationGrid, Benchmark, EvalItemResult, EvalRun

# The comparison table's columns: (key, label, benchmark, aggregate key, scale).
COLUMNS: tuple[tuple[str, str, str, str, float], ...] = (
    ("writingbench", "WritingBench", Benchmark.WRITINGBENCH, "score", 1.0),
    ("lbw_sl", "LongBench-Write S_l", Benchmark.LONGBENCH_WRITE, "S_l", 1.0),
    ("lbw_sq", "S_q", Benchmark.LONGBENCH_WRITE, "S_q", 1.0),
    ("lbw_sbar", "S̄", Benchmark.LONGBENCH_WRITE, "S_bar", 1.0),
    ("win_rate", "Win rate %", Benchmark.PAIRWISE, "adjusted_win_rate", 100.0),
    ("lc_win_rate", "LC win rate %", Benchmark.PAIRWISE, "length_controlled_win_rate", 100.0),
    ("creative", "Creative", Benchmark.CREATIVE, "score", 1.0),
    ("longbench_v2", "LongBench v2 acc %", Benchmark.LONGBENCH_V2, "score", 1.0),
)


def eval_run_list(*, benchmark: str = "", status: str = "") -> QuerySet[EvalRun]:
    runs = EvalRun.objects.select_related(
        "checkpoint", "dataset", "long_input", "training_run"
    ).order_by("-created_at")
    if benchmark:
        runs = runs.filter(benchmark=benchmark)
    if status:
        runs = runs.filter(status=status)
    return runs


def eval_results(eval_run: EvalRun) -> QuerySet[EvalItemResult]:
    return EvalItemResult.objects.filter(eval_run=eval_run).order_by("id")


def eval_runs_by_ids(ids: Iterable[int]) -> list[EvalRun]:
    return list(
        EvalRun.objects.select_related("checkpoint", "dataset", "long_input", "training_run")
        .filter(pk__in=list(ids))
        .order_by("created_at")
    )


def system_key(eval_run: EvalRun) -> tuple[Any, ...]:
    """Evaluations of the same system share a key (and a row of the comparison table)."""
    return (
        eval_run.system_kind,
        eval_run.checkpoint_id,
        eval_run.base_model,
        eval_run.reference_tier,
    )


@dataclass
class ComparisonRow:
    label: str
    cells: dict[str, float | None] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    runs: dict[str, EvalRun] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)

    def cell_list(self, columns: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """The row's cells in column order, for templates."""
        return [
            {
                "value": self.cells.get(key),
                "interval": self.intervals.get(key),
                "run": self.runs.get(key),
            }
            for key, _label in columns
        ]


@dataclass
class ComparisonTable:
    columns: list[tuple[str, str]]
    rows: list[ComparisonRow]
    extra_columns: list[str] = field(default_factory=list)

    def csv_rows(self) -> list[list[str]]:
        """The table as CSV rows; a "scoring variants" column names any cell scored with a
        deliberately non-official variant (it is there only when some cell is)."""
        head = ["system", *self.extra_columns, *(label for _key, label in self.columns)]
        body = []
        noted = False
        for row in self.rows:
            values = []
            variants = []
            for key, label in self.columns:
                value = row.cells.get(key)
                values.append("" if value is None else f"{value:.4f}")
                run = row.runs.get(key)
                if run is not None and run.scoring_variant:
                    variants.append(f"{label}: {run.scoring_variant}")
            noted = noted or bool(variants)
            body.append(
                [row.label, *(row.extra.get(c, "") for c in self.extra_columns), *values,
                 "; ".join(variants)]
            )  # fmt: skip
        if noted:
            return [[*head, "scoring variants"], *body]
        return [head, *(line[:-1] for line in body)]


def _fill(row: ComparisonRow, eval_run: EvalRun) -> None:
    """Put ``eval_run``'s numbers into ``row`` (the latest succeeded run per column wins)."""
    aggregates = eval_run.aggregates or {}
    for key, _label, benchmark, aggregate, scale in COLUMNS:
        if eval_run.benchmark != benchmark:
            continue
        value = aggregates.get(aggregate)
        if not isinstance(value, int | float):
            continue
        previous = row.runs.get(key)
        if previous is not None and previous.created_at > eval_run.created_at:
            continue
        row.cells[key] = float(value) * scale
        row.runs[key] = eval_run
        if benchmark == Benchmark.CREATIVE and aggregates.get("low") is not None:
            row.intervals[key] = (float(aggregates["low"]), float(aggregates["high"]))


def _table(rows: list[ComparisonRow], extra_columns: list[str] | None = None) -> ComparisonTable:
    used = [(key, label) for key, label, *_rest in COLUMNS if any(key in r.cells for r in rows)]
    return ComparisonTable(used, rows, extra_columns or [])


def comparison_table(eval_runs: Iterable[EvalRun]) -> ComparisonTable:
    """One row per system (checkpoint, base model, reference tier), one column per benchmark
    number (WritingBench, LongBench-Write S_l / S_q / S̄, win rates, ...), from the runs'
    succeeded evaluations; columns nobody has are left out."""
    rows: dict[tuple[Any, ...], ComparisonRow] = {}
    for eval_run in eval_runs:
        if eval_run.status != EvalRun.Status.SUCCEEDED:
            continue
        row = rows.setdefault(system_key(eval_run), ComparisonRow(eval_run.system_label))
        _fill(row, eval_run)
    return _table(list(rows.values()))


def ablation_table(grid: AblationGrid) -> ComparisonTable:
    """One row per cell of the grid (its axes as extra columns), filled from every succeeded
    evaluation of the cell's training run."""
    rows = []
    for cell in grid.cells.select_related("run").order_by("id"):
        row = ComparisonRow(
            cell.label,
            extra={
                "selection": cell.selection,
                "reward": cell.reward,
                "curriculum": cell.curriculum,
                "run status": cell.run.status,
            },
        )
        for eval_run in EvalRun.objects.filter(
            training_run=cell.run, status=EvalRun.Status.SUCCEEDED
        ).select_related("checkpoint"):
            _fill(row, eval_run)
        rows.append(row)
    return _table(rows, ["selection", "reward", "curriculum", "run status"])


# -- chart data ---------------------------------------------------------------------------------


def score_per_checkpoint(eval_runs: Iterable[EvalRun], benchmark: str) -> list[Series]:
    """Score against training step, one series per training run, from checkpoint (and final
    model) evaluations on ``benchmark``."""
    by_run: dict[int, list[tuple[float, float]]] = {}
    labels: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    for eval_run in eval_runs:
        if eval_run.benchmark != benchmark or eval_run.score is None:
            continue
        if eval_run.checkpoint_id and eval_run.checkpoint is not None:
            step, run_id = eval_run.checkpoint.step, eval_run.checkpoint.run_id
        elif eval_run.training_run_id and eval_run.training_run is not None:
            step, run_id = eval_run.training_run.current_step, eval_run.training_run_id
        else:
            continue
        by_run.setdefault(run_id, []).append((float(step), eval_run.score))
        labels.setdefault(run_id, []).append(f"eval {eval_run.pk}")
        names[run_id] = f"run {run_id}"
    return [Series(names[k], by_run[k], labels[k]) for k in sorted(by_run)]


def length_points(eval_runs: Iterable[EvalRun]) -> list[Series]:
    """(required words, produced words) per judged item, one series per evaluation."""
    series = []
    for eval_run in eval_runs:
        rows = list(
            EvalItemResult.objects.filter(eval_run=eval_run, required_words__isnull=False)
            .order_by("id")
            .values_list("required_words", "produced_words", "item_id")
        )
        if rows:
            series.append(
                Series(
                    f"#{eval_run.pk} {eval_run.system_label}",
                    [(float(r), float(p)) for r, p, _i in rows],
                    [f"item {i}" for _r, _p, i in rows],
                )
            )
    return series


def domain_scores(eval_runs: Iterable[EvalRun]) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Domains (sorted) and, per evaluation, its mean item score per domain."""
    series: dict[str, dict[str, float]] = {}
    domains: set[str] = set()
    for eval_run in eval_runs:
        scores = (eval_run.aggregates or {}).get("domain_scores") or {}
        if scores:
            name = f"#{eval_run.pk} {eval_run.system_label}"
            series[name] = {str(k): float(v) for k, v in scores.items()}
            domains.update(series[name])
    return sorted(domains), series


# -- CSV ---------------------------------------------------------------------------------------

RESULT_COLUMNS = (
    "eval_run", "benchmark", "system", "item_id", "iteration", "domain", "required_words",
    "produced_words", "score", "scoring_variant", "error", "details", "response",
)  # fmt: skip


def result_csv_rows(eval_run: EvalRun) -> Iterable[list[Any]]:
    """One row per item result, with the response text and the judgment details as JSON."""
    import json

    yield list(RESULT_COLUMNS)
    for row in eval_results(eval_run).iterator():
        yield [
            eval_run.pk, eval_run.benchmark, eval_run.system_label, row.item_id, row.iteration,
            row.domain, row.required_words if row.required_words is not None else "",
            row.produced_words, "" if row.score is None else f"{row.score:.4f}",
            eval_run.scoring_variant, row.error, json.dumps(row.details, ensure_ascii=False),
            row.response,
        ]  # fmt: skip
