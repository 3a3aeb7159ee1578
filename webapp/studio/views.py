"""Studio pages for researchers."""

from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from webapp.studio.models import Dataset, Run
from webapp.studio.permissions import researcher_required


@researcher_required
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {
        "dataset_count": Dataset.objects.count(),
        "run_counts": {status: 0 for status in Run.Status.values},
        "recent_runs": Run.objects.select_related("dataset", "owner")[:10],
    }
    for row in Run.objects.values("status").order_by().annotate(n=Count("id")):
        context["run_counts"][row["status"]] = row["n"]
    return render(request, "studio/dashboard.html", context)
