"""The tail of a run's own log (the worker's lines for this run), polled by the run page."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.http import HTMX_STOP_POLLING

from webapp.studio.models import Run
from webapp.studio.permissions import researcher_required
from webapp.studio.services.run_log import TAIL_LINES, run_log_tail


@researcher_required
def run_log(request: HttpRequest, pk: int) -> HttpResponse:
    run = Run.objects.filter(pk=pk).only("pk", "status", "output_dir", "epoch").first()
    if run is None:
        raise Http404("No such run.")
    context = {
        "run": run,
        "log_lines": run_log_tail(run.output_dir, run.epoch),
        "tail_lines": TAIL_LINES,
    }
    response = render(request, "studio/_run_log.html", context)
    if request.htmx and not run.is_active:
        response.status_code = HTMX_STOP_POLLING  # the run ended: its log is complete
    patch_vary_headers(response, ("HX-Request",))
    return response
