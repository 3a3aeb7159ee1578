"""Evaluation reads: lists, the comparison table in the paper's shape, chart data, CSV rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet, Sum

from rl_engine.evaluation.stats import bootstrap_ratio
from webapp.charts import Series
from webapp.evals.models import AblationGrid, Benchmark, EvalItemResult, EvalRun
from webapp.studio.token_usage import TokenTotals, totals_sum

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


def eval_token_totals(eval_run: EvalRun) -> TokenTotals:
    """What judging the evaluation's responses cost (1 query), at the judge endpoint's
    declared price."""
    spent = EvalItemResult.objects.filter(eval_run=eval_run).aggregate(
        prompt=Sum("judge_prompt_tokens"),
        completion=Sum("judge_completion_tokens"),
        attempts=Sum("judge_attempts"),
    )
    return TokenTotals.of(
        eval_run.judge_endpoint,
        prompt_tokens=spent["prompt"],
        completion_tokens=spent["completion"],
        attempts=spent["attempts"],
    )


def evaluations_token_totals(eval_runs: Iterable[EvalRun]) -> TokenTotals:
    """The totals of several evaluations (a run evaluation's members), each at its judge's
    price."""
    return totals_sum(eval_token_totals(eval_run) for eval_run in eval_runs)


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


BOOTSTRAP_RESAMPLES = 1000


@dataclass
class Cell:
    """One number of the comparison table: the score, its 95% bootstrap interval over items
    (None when the number has no item-level interval), N (judged responses it averages),
    and where it comes from (the evaluation, its dataset and split)."""

    value: float | None
    run: EvalRun
    low: float | None = None
    high: float | None = None
    n: int | None = None
    items: frozenset[str] = frozenset()
    restricted: bool = False

    @property
    def interval(self) -> tuple[float, float] | None:
        if self.low is None or self.high is None:
            return None
        return (self.low, self.high)

    @property
    def source(self) -> str:
        return self.run.source_label

    @property
    def dataset(self) -> str:
        if self.run.long_input_id:
            return str(self.run.long_input)
        return str(self.run.dataset) if self.run.dataset_id else ""

    @property
    def split(self) -> str:
        if self.run.long_input_id:
            return "(file)"
        return self.run.split or "every split"


@dataclass
class ComparisonRow:
    label: str
    cells: dict[str, float | None] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    runs: dict[str, EvalRun] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    details: dict[str, Cell] = field(default_factory=dict)
    order: tuple[Any, ...] = ()

    def cell_list(self, columns: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """The row's cells in column order, for templates."""
        return [
            {
                "value": self.cells.get(key),
                "interval": self.intervals.get(key),
                "run": self.runs.get(key),
                "cell": self.details.get(key),
            }
            for key, _label in columns
        ]


@dataclass
class ComparisonTable:
    columns: list[tuple[str, str]]
    rows: list[ComparisonRow]
    extra_columns: list[str] = field(default_factory=list)
    # Benchmarks whose systems were not evaluated on the same items (benchmark -> label).
    differing: dict[str, str] = field(default_factory=dict)
    same_items: bool = False
    detailed: bool = False

    def csv_rows(self) -> list[list[str]]:
        """The table as CSV rows. A detailed table (the comparison view's) adds, per column,
        the interval, N, dataset and split of every cell; a "scoring variants" column names
        any cell scored with a deliberately non-official variant (only when some cell is)."""
        head = ["system", *self.extra_columns, *(label for _key, label in self.columns)]
        if self.detailed:
            for _key, label in self.columns:
                head += [f"{label} low", f"{label} high", f"{label} N", f"{label} dataset",
                         f"{label} split"]  # fmt: skip
            head.append("same items only")
        body = []
        noted = False
        for row in self.rows:
            values = []
            variants = []
            for key, label in self.columns:
                value = row.cells.get(key)
                values.append(_number(value))
                run = row.runs.get(key)
                if run is not None and run.scoring_variant:
                    variants.append(f"{label}: {run.scoring_variant}")
            if self.detailed:
                for key, _label in self.columns:
                    cell = row.details.get(key)
                    if cell is None:
                        values += ["", "", "", "", ""]
                    else:
                        values += [_number(cell.low), _number(cell.high),
                                   "" if cell.n is None else str(cell.n), cell.dataset,
                                   cell.split]  # fmt: skip
                values.append("yes" if self.same_items else "no")
            noted = noted or bool(variants)
            body.append(
                [row.label, *(row.extra.get(c, "") for c in self.extra_columns), *values,
                 "; ".join(variants)]
            )  # fmt: skip
        if noted:
            return [[*head, "scoring variants"], *body]
        return [head, *(line[:-1] for line in body)]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


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
        row.intervals.pop(key, None)
        if benchmark == Benchmark.CREATIVE and aggregates.get("low") is not None:
            row.intervals[key] = (float(aggregates["low"]), float(aggregates["high"]))


def _table(rows: list[ComparisonRow], extra_columns: list[str] | None = None) -> ComparisonTable:
    used = [(key, label) for key, label, *_rest in COLUMNS if any(key in r.cells for r in rows)]
    return ComparisonTable(used, rows, extra_columns or [])


# -- item-level numbers: intervals, N, the same items --------------------------------------------

_ItemRow = dict[str, Any]


def _item_rows(eval_run: EvalRun) -> list[_ItemRow]:
    return list(
        EvalItemResult.objects.filter(eval_run=eval_run, judged=True)
        .order_by("id")
        .values("item_id", "iteration", "score", "required_words", "produced_words", "details")
    )


def _criteria(row: _ItemRow) -> list[float]:
    criteria = (row["details"] or {}).get("criteria") or []
    if not isinstance(criteria, list):
        return []
    return [
        float(c["score"]) for c in criteria if isinstance(c, dict) and c.get("score") is not None
    ]


def _detail(row: _ItemRow, name: str) -> float | None:
    value = (row["details"] or {}).get(name)
    return float(value) if isinstance(value, int | float) else None


def _parts(key: str, rows: Sequence[_ItemRow]) -> list[tuple[list[float], list[float]]] | None:
    """The (numerators, denominators) per item whose ratio of sums is column ``key``'s
    number (see :func:`bootstrap_ratio`); None for a number with no item-level form."""

    def mean_of(values: list[float | None]) -> tuple[list[float], list[float]]:
        return [v or 0.0 for v in values], [0.0 if v is None else 1.0 for v in values]

    if key == "writingbench":
        criteria = [_criteria(r) for r in rows]
        return [([10.0 * sum(c) for c in criteria], [float(len(c)) for c in criteria])]
    if key.startswith("lbw_"):
        s_l = mean_of([_detail(r, "length_score") for r in rows])
        s_q = mean_of([_detail(r, "quality_score") for r in rows])
        measure = key.split("@")[0]
        return {"lbw_sl": [s_l], "lbw_sq": [s_q], "lbw_sbar": [s_l, s_q]}.get(measure)
    if key in ("win_rate", "creative", "longbench_v2"):
        return [mean_of([r["score"] for r in rows])]
    return None


def _lc_win_rate(rows: Sequence[_ItemRow]) -> float | None:
    from rl_engine.evaluation.winrate import length_controlled_win_rate

    judged = [r for r in rows if (r["details"] or {}).get("outcome") in ("win", "tie", "loss")]
    if not judged:
        return None
    try:
        result = length_controlled_win_rate(
            [r["details"]["outcome"] for r in judged],
            [r["produced_words"] for r in judged],
            [int(r["details"].get("baseline_words") or 0) for r in judged],
        )
    except ValueError:
        return None
    return 100.0 * result.length_controlled


def _bucket_of(key: str) -> str | None:
    return key.split("@", 1)[1] if "@" in key else None


def _measure(
    key: str, eval_run: EvalRun, rows: Sequence[_ItemRow], restricted: bool, value: float | None
) -> Cell:
    """Column ``key``'s cell from ``eval_run``'s judged item ``rows`` (already restricted to
    the shared items when ``restricted``); ``value`` is the stored aggregate (kept as the
    number when nothing is restricted, so the table shows what the evaluation reported)."""
    bucket = _bucket_of(key)
    if bucket is not None:
        from rl_engine.evaluation.metrics import length_bucket

        rows = [
            r for r in rows if r["required_words"] and length_bucket(r["required_words"]) == bucket
        ]
    items = frozenset(str(r["item_id"]) for r in rows)
    parts = _parts(key, rows) if rows else None
    low = high = None
    point = value
    if parts is not None:
        score, low, high = bootstrap_ratio(parts, resamples=BOOTSTRAP_RESAMPLES, seed=eval_run.pk)
        if restricted or point is None:
            point = score
    elif key == "lc_win_rate" and restricted:
        point = _lc_win_rate(rows)
    if not rows:
        n = (eval_run.aggregates or {}).get("items") if not restricted else 0
        n = n if isinstance(n, int) else None
    elif parts is not None:
        n = int(sum(1 for d in parts[0][1] if d > 0))
    else:
        n = len(rows)
    return Cell(point, eval_run, low, high, n, items, restricted)


def _detail_cells(table: ComparisonTable, same_items: bool) -> ComparisonTable:
    """Fill every cell's interval, N and items; flag benchmarks whose systems were evaluated on
    different items; with ``same_items`` recompute each benchmark on the items all its systems
    share."""
    cache: dict[int, list[_ItemRow]] = {}

    def rows_of(eval_run: EvalRun) -> list[_ItemRow]:
        if eval_run.pk not in cache:
            cache[eval_run.pk] = _item_rows(eval_run)
        return cache[eval_run.pk]

    benchmark_of = {key: benchmark for key, _l, benchmark, *_r in COLUMNS}
    item_sets: dict[str, list[frozenset[str]]] = {}
    for row in table.rows:
        seen: set[int] = set()
        for key, run in row.runs.items():
            benchmark = benchmark_of.get(key.split("@")[0], run.benchmark)
            if run.pk in seen:
                continue
            seen.add(run.pk)
            items = frozenset(str(r["item_id"]) for r in rows_of(run))
            if items:
                item_sets.setdefault(benchmark, []).append(items)
    shared: dict[str, frozenset[str]] = {}
    for benchmark, sets in item_sets.items():
        if len(set(sets)) > 1:
            table.differing[benchmark] = Benchmark(benchmark).label
        shared[benchmark] = frozenset.intersection(*sets)
    table.same_items = same_items
    table.detailed = True
    for row in table.rows:
        for key, run in row.runs.items():
            benchmark = benchmark_of.get(key.split("@")[0], run.benchmark)
            restrict = same_items and benchmark in table.differing
            rows = rows_of(run)
            if restrict:
                rows = [r for r in rows if str(r["item_id"]) in shared[benchmark]]
            cell = _measure(key, run, rows, restrict, row.cells.get(key))
            if not restrict and key in row.intervals:
                # The interval the evaluation itself reported (creative) stays the shown one.
                cell.low, cell.high = row.intervals[key]
            row.details[key] = cell
            row.cells[key] = cell.value
            if cell.interval is not None:
                row.intervals[key] = cell.interval
            elif key in row.intervals and restrict:
                row.intervals.pop(key)
    return table


def comparison_table(eval_runs: Iterable[EvalRun], *, same_items: bool = False) -> ComparisonTable:
    """One row per system (checkpoint, base model, reference tier), one column per benchmark
    number (WritingBench, LongBench-Write S_l / S_q / S̄, win rates, ...), from the runs'
    succeeded evaluations; columns nobody has are left out. Every cell carries its 95%
    bootstrap interval over items, N, dataset and split; benchmarks whose systems were
    evaluated on different items are listed in ``differing``, and ``same_items`` recomputes
    them on the items every system has."""
    rows: dict[tuple[Any, ...], ComparisonRow] = {}
    for eval_run in eval_runs:
        if eval_run.status != EvalRun.Status.SUCCEEDED:
            continue
        row = rows.setdefault(system_key(eval_run), ComparisonRow(eval_run.system_label))
        _fill(row, eval_run)
    return _detail_cells(_table(list(rows.values())), same_items)


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
