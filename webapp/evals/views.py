"""Evaluation pages: the list, a new evaluation, one evaluation (live progress, per-item
results), the comparison across runs and checkpoints, CSV exports, long-input benchmark
uploads and the ablation grid."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from webapp import charts
from webapp.evals import run_evaluations, selectors
from webapp.evals.ablation_results import ablation_results, signal_by_arm
from webapp.evals.forms import (
    AblationForm,
    EvalRunForm,
    LongInputUploadForm,
    RunEvaluationForm,
)
from webapp.evals.models import (
    AblationGrid,
    Benchmark,
    EvalRun,
    LongInputBenchmark,
    RunEvaluation,
)
from webapp.evals.run_evaluations import run_evaluation_create
from webapp.evals.services.ablations import (
    AblationError,
    ablation_grid_advance,
    ablation_grid_create,
)
from webapp.evals.services.config import EvalConfigError
from webapp.evals.services.eval_runs import eval_run_cancel, eval_run_create, eval_run_retry
from webapp.evals.services.long_input import BenchmarkFileError, long_input_import
from webapp.studio.models import Run
from webapp.studio.permissions import researcher_required
from webapp.studio.views.common import paginate, query_without_page

# htmx stops polling an element whose response has this status (and still swaps it in).
STOP_POLLING = 286
MAX_COMPARED = 50


class _Echo:
    """A file-like object whose write returns the line, for streaming CSV."""

    def write(self, value: str) -> str:
        return value


def _csv_response(rows: Iterable[list[Any]], filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@researcher_required
def eval_list(request: HttpRequest) -> HttpResponse:
    benchmark = request.GET.get("benchmark", "")
    if benchmark not in Benchmark.values:
        benchmark = ""
    status = request.GET.get("status", "")
    if status not in EvalRun.Status.values:
        status = ""
    page = paginate(request, selectors.eval_run_list(benchmark=benchmark, status=status))
    return render(
        request,
        "evals/list.html",
        {
            "page": page,
            "benchmark": benchmark,
            "benchmarks": Benchmark.choices,
            "status": status,
            "query": query_without_page(request),
        },
    )


@researcher_required
def eval_new(request: HttpRequest) -> HttpResponse:
    initial = {
        k: request.GET[k] for k in ("benchmark", "system_kind", "dataset") if k in request.GET
    }
    checkpoint = request.GET.get("checkpoint")
    if checkpoint:
        initial.update(system_kind=EvalRun.SystemKind.CHECKPOINT, checkpoint=checkpoint)
    form = EvalRunForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            eval_run = eval_run_create(**form.service_kwargs(), created_by=request.user)
        except EvalConfigError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Evaluation #{eval_run.pk} queued.")
            return redirect("evals:detail", pk=eval_run.pk)
    return render(request, "evals/new.html", {"form": form}, status=400 if form.errors else 200)


def _run_charts(eval_run: EvalRun) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if eval_run.results.filter(required_words__isnull=False).exists():
        context["length_chart"] = charts.log_scatter(
            selectors.length_points([eval_run]),
            x_label="required words (log)",
            y_label="produced words (log)",
        )
    groups, series = selectors.domain_scores([eval_run])
    if len(groups) > 1:
        context["domain_chart"] = charts.grouped_bars(groups, series, y_label="score")
    return context


@researcher_required
def eval_detail(request: HttpRequest, pk: int) -> HttpResponse:
    eval_run = get_object_or_404(
        EvalRun.objects.select_related("checkpoint", "dataset", "long_input", "training_run"),
        pk=pk,
    )
    context: dict[str, Any] = {
        "eval_run": eval_run,
        "tokens": selectors.eval_token_totals(eval_run),
    }
    if request.htmx:
        response = render(request, "evals/detail.html#progress", context)
        if not eval_run.is_active:
            response.status_code = STOP_POLLING
        return response
    page = paginate(request, selectors.eval_results(eval_run), per_page=25)
    context.update(page=page, query=query_without_page(request))
    if eval_run.status == EvalRun.Status.SUCCEEDED:
        context.update(_run_charts(eval_run))
        context["table"] = selectors.comparison_table([eval_run])
    return render(request, "evals/detail.html", context)


@researcher_required
@require_POST
def eval_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    eval_run = get_object_or_404(EvalRun, pk=pk)
    if eval_run_cancel(eval_run=eval_run):
        messages.success(request, f"Evaluation #{pk} cancelled.")
    else:
        messages.info(request, f"Evaluation #{pk} had already ended.")
    return redirect("evals:detail", pk=pk)


@researcher_required
@require_POST
def eval_retry(request: HttpRequest, pk: int) -> HttpResponse:
    eval_run = get_object_or_404(EvalRun, pk=pk)
    if eval_run_retry(eval_run=eval_run, user=request.user):
        messages.success(
            request, f"Evaluation #{pk} queued again; it keeps the responses and judgments it has."
        )
    else:
        messages.info(
            request, f"Evaluation #{pk} is {eval_run.status}; only a failed one is retried."
        )
    return redirect("evals:detail", pk=pk)


@researcher_required
def eval_results_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    eval_run = get_object_or_404(EvalRun, pk=pk)
    return _csv_response(selectors.result_csv_rows(eval_run), f"evaluation-{pk}-items.csv")


def _compared_runs(request: HttpRequest) -> list[EvalRun]:
    """The evaluations named by ``?runs=1,2`` (or repeated ``runs``), or by ``?training_run=``;
    by default the latest succeeded ones."""
    ids: list[int] = []
    for value in request.GET.getlist("runs"):
        for part in value.split(","):
            if part.strip().isdigit():
                ids.append(int(part))
    if ids:
        return selectors.eval_runs_by_ids(ids[:MAX_COMPARED])
    runs = selectors.eval_run_list(status=EvalRun.Status.SUCCEEDED)
    training_run = request.GET.get("training_run", "")
    if training_run.isdigit():
        runs = runs.filter(training_run_id=int(training_run))
    return list(runs[:MAX_COMPARED])[::-1]


@researcher_required
def compare(request: HttpRequest) -> HttpResponse:
    eval_runs = _compared_runs(request)
    same_items = request.GET.get("same_items") == "1"
    table = selectors.comparison_table(eval_runs, same_items=same_items)
    present = [b for b, _label in Benchmark.choices if any(r.benchmark == b for r in eval_runs)]
    benchmark = request.GET.get("benchmark", "")
    if benchmark not in present:
        benchmark = present[0] if present else ""
    checkpoint_series = selectors.score_per_checkpoint(eval_runs, benchmark)
    length_series = selectors.length_points(eval_runs)
    groups, bars = selectors.domain_scores(eval_runs)
    figures = [
        {
            "title": f"Score per checkpoint ({benchmark or 'no benchmark'}, 0-100)",
            "svg": charts.labelled_line_chart(
                checkpoint_series, x_label="training step", y_label="score", y_range=(0, 100)
            ),
            "legend": [s.name for s in checkpoint_series],
        },
        {
            "title": "Required vs produced words (log axes; dashed: exact length)",
            "svg": charts.log_scatter(
                length_series, x_label="required words (log)", y_label="produced words (log)"
            ),
            "legend": [s.name for s in length_series],
        },
        {
            "title": "Mean item score per domain",
            "svg": charts.grouped_bars(groups, bars, y_label="mean item score"),
            "legend": list(bars),
        },
    ]
    context = {
        "eval_runs": eval_runs,
        "table": table,
        "rows": [(row, row.cell_list(table.columns)) for row in table.rows],
        "benchmark": benchmark,
        "benchmarks": [(b, Benchmark(b).label) for b in present],
        "figures": figures,
        "ids": ",".join(str(r.pk) for r in eval_runs),
        "same_items_url": _with_query(request, same_items="1"),
        "all_items_url": _with_query(request, same_items=None),
        "csv_query": _with_query(request, benchmark=None).lstrip("?"),
    }
    return render(request, "evals/compare.html", context)


def _with_query(request: HttpRequest, **changes: str | None) -> str:
    """The current query string with ``changes`` applied (None removes a parameter)."""
    query = request.GET.copy()
    if "runs" not in query:
        query["runs"] = ",".join(str(r.pk) for r in _compared_runs(request))
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return "?" + query.urlencode()


@researcher_required
def compare_csv(request: HttpRequest) -> StreamingHttpResponse:
    table = selectors.comparison_table(
        _compared_runs(request), same_items=request.GET.get("same_items") == "1"
    )
    return _csv_response(table.csv_rows(), "evaluation-comparison.csv")


@researcher_required
def long_input_list(request: HttpRequest) -> HttpResponse:
    form = LongInputUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            benchmark = long_input_import(
                name=form.cleaned_data.get("name") or upload.name,
                lines=upload.open("rb"),
                filename=upload.name,
                created_by=request.user,
            )
        except (BenchmarkFileError, UnicodeDecodeError) as error:
            form.add_error("file", str(error))
        else:
            messages.success(
                request,
                f"Imported {benchmark.questions.count()} questions as {benchmark.name!r}.",
            )
            return redirect("evals:long_input_list")
    benchmarks = LongInputBenchmark.objects.order_by("-created_at")
    return render(
        request,
        "evals/long_input.html",
        {"form": form, "benchmarks": benchmarks},
        status=400 if form.errors else 200,
    )


@researcher_required
def ablation_list(request: HttpRequest) -> HttpResponse:
    grids = AblationGrid.objects.select_related("dataset").order_by("-created_at")
    return render(request, "evals/ablation_list.html", {"grids": grids})


@researcher_required
def ablation_new(request: HttpRequest) -> HttpResponse:
    form = AblationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            grid = ablation_grid_create(**form.service_kwargs(), created_by=request.user)
        except (AblationError, EvalConfigError) as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Launched {grid.cells.count()} runs as {grid.group}.")
            return redirect("evals:ablation_detail", pk=grid.pk)
    return render(
        request, "evals/ablation_new.html", {"form": form}, status=400 if form.errors else 200
    )


@researcher_required
def ablation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    grid = get_object_or_404(AblationGrid.objects.select_related("dataset"), pk=pk)
    table = selectors.ablation_table(grid)
    cells = grid.cells.select_related("run", "eval_run").order_by("id")
    refused = next((c.comparison["refused"] for c in cells if c.comparison.get("refused")), "")
    return render(
        request,
        "evals/ablation_detail.html",
        {
            "grid": grid,
            "cells": cells,
            "comparison_refused": refused,
            "table": table,
            "rows": [(row, row.cell_list(table.columns)) for row in table.rows],
            "study": ablation_results(grid),
            "signal": _signal_figure(grid),
        },
    )


def _signal_figure(grid: AblationGrid) -> dict[str, Any]:
    series = signal_by_arm(grid)
    return {
        "svg": charts.labelled_line_chart(
            series, x_label="training step", y_label="groups with reward variance",
            y_range=(0, 1),
        ),
        "legend": [s.name for s in series],
    }  # fmt: skip


@researcher_required
@require_POST
def ablation_evaluate(request: HttpRequest, pk: int) -> HttpResponse:
    """Evaluate the grid's finished runs now (the watcher does it too, every half minute)."""
    grid = get_object_or_404(AblationGrid, pk=pk)
    progress = ablation_grid_advance(grid.pk)
    messages.info(
        request,
        f"{progress.created} evaluation(s) started; {progress.active_runs} run(s) still training.",
    )
    return redirect("evals:ablation_detail", pk=pk)


@researcher_required
def ablation_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    grid = get_object_or_404(AblationGrid, pk=pk)
    if not grid.cells.exists():
        raise Http404("the grid has no cells")
    return _csv_response(selectors.ablation_table(grid).csv_rows(), f"ablation-{pk}.csv")


@researcher_required
def ablation_arms_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The study table: one row per arm, means and 95% t-intervals over its seeds."""
    grid = get_object_or_404(AblationGrid, pk=pk)
    if not grid.cells.exists():
        raise Http404("the grid has no cells")
    return _csv_response(ablation_results(grid).csv_rows(), f"ablation-{pk}-arms.csv")


# -- evaluate a training run ---------------------------------------------------------------------


@researcher_required
def run_evaluate(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("dataset"), pk=run_id)
    form = RunEvaluationForm(request.POST or None, run=run)
    if request.method == "POST" and form.is_valid():
        try:
            evaluation = run_evaluation_create(**form.service_kwargs(), created_by=request.user)
        except EvalConfigError as error:
            form.add_error(None, str(error))
        else:
            count = evaluation.members.count()
            messages.success(request, f"{count} evaluation(s) queued for run {run.pk}.")
            return redirect("evals:run_evaluation", pk=evaluation.pk)
    return render(
        request,
        "evals/run_evaluate.html",
        {"form": form, "run": run},
        status=400 if form.errors else 200,
    )


@researcher_required
def run_evaluation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = get_object_or_404(
        RunEvaluation.objects.select_related("training_run", "dataset", "long_input"), pk=pk
    )
    eval_runs = run_evaluations.members(evaluation)
    active = any(r.is_active for r in eval_runs)
    done = sum(1 for r in eval_runs if not r.is_active)
    context: dict[str, Any] = {
        "evaluation": evaluation,
        "eval_runs": eval_runs,
        "active": active,
        "done": done,
        "tokens": selectors.evaluations_token_totals(eval_runs),
        "progress": (
            sum(r.progress if r.is_active else 1.0 for r in eval_runs) / len(eval_runs)
            if eval_runs else 0.0
        ),
    }  # fmt: skip
    if not request.htmx or not active:
        table = run_evaluations.run_evaluation_table(evaluation, eval_runs)
        context["table"] = table
        context["rows"] = [(row, row.cell_list(table.columns)) for row in table.rows]
        context["curves"] = [
            {
                "title": f"{curve.label}: score per checkpoint (0-100; step 0 = base policy)",
                "svg": charts.labelled_line_chart(
                    curve.series, x_label="training step", y_label="score", y_range=(0, 100)
                ),
                "benchmark": curve.benchmark,
            }
            for curve in run_evaluations.run_evaluation_curves(evaluation, eval_runs)
        ]
    if request.htmx:
        response = render(request, "evals/run_evaluation.html#results", context)
        if not active:
            response.status_code = STOP_POLLING
        return response
    return render(request, "evals/run_evaluation.html", context)


@researcher_required
def run_evaluation_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    evaluation = get_object_or_404(RunEvaluation, pk=pk)
    table = run_evaluations.run_evaluation_table(evaluation)
    return _csv_response(table.csv_rows(), f"run-{evaluation.training_run_id}-evaluation-{pk}.csv")
