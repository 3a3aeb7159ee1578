"""``/healthz`` and ``/metrics``: for load balancers, orchestrators and Prometheus.

Anonymous callers of ``/healthz`` get only its status (``{"status": "ok"}``, 200 or 503);
staff users and callers with ``Authorization: Bearer <WRITING_RL_OPS_TOKEN>`` also get each
check's details (latencies, worker names, errors without passwords). ``/metrics`` answers only
the token or an address in ``WRITING_RL_METRICS_ALLOW``.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from webapp.ops import metrics
from webapp.ops.health import CHECKS, run_checks
from webapp.ops.security import address_allowed, has_ops_token


def may_see_details(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    staff = bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)
    return staff or has_ops_token(request)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every check passes, 503 otherwise; with details, the body says which failed.

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
    body: dict[str, object] = {"status": "ok" if healthy else "unhealthy"}
    if may_see_details(request):
        body["checks"] = {name: result.to_dict() for name, result in results.items()}
    return JsonResponse(body, status=200 if healthy else 503)


@never_cache
@require_GET
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    if not (has_ops_token(request) or address_allowed(request, settings.WRITING_RL_METRICS_ALLOW)):
        response = HttpResponse(
            "/metrics needs Authorization: Bearer <WRITING_RL_OPS_TOKEN> or a client address "
            "in WRITING_RL_METRICS_ALLOW\n",
            status=401 if request.headers.get("Authorization") is None else 403,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="writing-rl-metrics"'
        return response
    return HttpResponse(metrics.render(metrics.collect()), content_type=metrics.CONTENT_TYPE)
