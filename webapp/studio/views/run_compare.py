"""Several runs' curves overlaid on shared axes, chosen from the run list."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from webapp.charts import SMOOTHING_CHOICES, line_chart
from webapp.studio import selectors
from webapp.studio.models import Run
from webapp.studio.permissions import researcher_required
from webapp.studio.run_page import ChartSettings

MAX_COMPARED = 8
# (title, key in run_charts(), label of the series to take, y range)
OVERLAYS = (
    ("Reward per step", "reward", "reward (total)", (None, None)),
    ("Win rate against the reference", "rates", "win", (0.0, 1.0)),
    ("Rollouts without a verdict", "rates", "invalid", (0.0, 1.0)),
    ("Completion length (words)", "length", "words per rollout", (0.0, None)),
)


@researcher_required
def run_compare(request: HttpRequest) -> HttpResponse:
    ids = []
    for raw in request.GET.getlist("run"):
        if raw.isdigit() and int(raw) not in ids:
            ids.append(int(raw))
    runs = list(Run.objects.filter(pk__in=ids[:MAX_COMPARED]).select_related("dataset"))
    runs.sort(key=lambda run: ids.index(run.pk))
    settings = ChartSettings.from_query(request.GET)
    charts = []
    if runs:
        data = {run.pk: selectors.run_charts(run) for run in runs}
        for title, key, label, (y_min, y_max) in OVERLAYS:
            series: list[dict[str, Any]] = []
            for run in runs:
                line = next((s for s in data[run.pk][key] if s["label"] == label), None)
                if line is not None:
                    series.append({"label": f"{run.name} (#{run.pk})", "points": line["points"]})
            charts.append(
                line_chart(
                    series,
                    title=title,
                    y_min=y_min,
                    y_max=y_max,
                    smoothing=settings.smoothing,
                    x_range=settings.x_range,
                )
            )
    return render(
        request,
        "studio/run_compare.html",
        {
            "runs": runs,
            "charts": charts,
            "settings": settings,
            "smoothing_choices": SMOOTHING_CHOICES,
            "too_many": len(ids) > MAX_COMPARED,
            "max_compared": MAX_COMPARED,
            "missing": len(ids[:MAX_COMPARED]) - len(runs),
        },
    )
