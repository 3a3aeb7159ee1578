"""Operations endpoints, at the site root: health, metrics and the internal API."""

from django.urls import path

from webapp.ops import internal_api, views

app_name = "ops"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.prometheus_metrics, name="metrics"),
    path("internal/runs/<int:run_id>/tiers", internal_api.tiers, name="internal-tiers"),
    path("internal/runs/<int:run_id>/outcomes", internal_api.outcomes, name="internal-outcomes"),
    path("internal/runs/<int:run_id>/judgments", internal_api.judgments, name="internal-judgments"),
]
