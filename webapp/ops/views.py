"""``/healthz`` and ``/metrics``: for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from webapp.ops import metrics
from webapp.ops.health import CHECKS, run_checks


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every check passes, 503 otherwise; the body says which failed and why.

    ``?checks=database,broker`` runs only those (a container's liveness should not depend on
    the workers being up; a monitor's should).
    """
    wanted = request.GET.get("checks")
    names = [n.strip() for n in wanted.split(",") if n.strip()] if wanted else list(CHECKS)
    try:
        results = run_checks(names)
    except ValueError as error:
        return JsonResponse({"status": "error", "error": str(error)}, status=400)
    healthy = all(result.ok for result in results.values())
    return JsonResponse(
        {
            "status": "ok" if healthy else "unhealthy",
            "checks": {name: result.to_dict() for name, result in results.items()},
        },
        status=200 if healthy else 503,
    )


@never_cache
@require_GET
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(metrics.render(metrics.collect()), content_type=metrics.CONTENT_TYPE)
