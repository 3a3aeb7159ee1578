"""A run's per-step metrics (trainer metrics and the learning signal) as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404

from webapp.studio.learning_signal import run_metrics_export
from webapp.studio.models import Run
from webapp.studio.permissions import researcher_required


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


@researcher_required
def run_metrics_csv(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run, pk=pk)
    table = run_metrics_export(run)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(table["columns"])
    for row in table["rows"]:
        writer.writerow([_cell(row[column]) for column in table["columns"]])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{pk}-metrics.csv"'
    return response


@researcher_required
def run_metrics_json(request: HttpRequest, pk: int) -> JsonResponse:
    run = get_object_or_404(Run, pk=pk)
    return JsonResponse({"run": run.pk, **run_metrics_export(run)})
