"""/healthz tells anonymous callers only its status, and pings workers at most every few
seconds; /metrics answers only a token or an allowed network."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from webapp.ops import health

TOKEN = "ops-token-" + "z" * 30


@pytest.fixture(autouse=True)
def _ops(settings: Any) -> None:
    settings.WRITING_RL_OPS_TOKEN = TOKEN
    settings.WRITING_RL_METRICS_ALLOW = ["10.8.0.0/16"]
    settings.WRITING_RL_HEALTHZ_PING_TIMEOUT_S = 0.3
    settings.WRITING_RL_HEALTHZ_CACHE_S = 0


@pytest.mark.django_db
def test_anonymous_healthz_is_status_only_even_when_a_check_fails(
    client: Client, settings: Any
) -> None:
    settings.CELERY_BROKER_URL = "redis://:hunter2hunter2@127.0.0.1:1/0"  # down, with a password
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy"}
    detailed = client.get("/healthz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    assert not detailed["checks"]["broker"]["ok"]
    assert "hunter2hunter2" not in str(detailed)


@pytest.mark.django_db
def test_staff_see_the_details(client: Client) -> None:
    client.force_login(User.objects.create_user("ops", is_staff=True))
    body = client.get("/healthz?checks=database").json()
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_the_worker_ping_is_cached(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.WRITING_RL_HEALTHZ_CACHE_S = 5
    health._worker_cache = None
    pings: list[float] = []
    real = health.check_workers

    def counted(timeout_s: float | None = None) -> health.CheckResult:
        pings.append(time.monotonic())
        return real(timeout_s)

    monkeypatch.setattr(health, "check_workers", counted)
    started = time.perf_counter()
    for _ in range(5):
        client.get("/healthz?checks=workers")
    assert len(pings) == 1
    # Four of the five calls did not wait for a ping.
    assert time.perf_counter() - started < 4 * settings.WRITING_RL_HEALTHZ_PING_TIMEOUT_S + 1


@pytest.mark.django_db
def test_metrics_need_the_token_or_an_allowed_address(client: Client) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    # A forwarded-for header from an allowed network does not help.
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="10.8.0.5").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    allowed = Client(REMOTE_ADDR="10.8.3.4")
    assert allowed.get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.9.0.1").get("/metrics").status_code == 401


@pytest.mark.django_db
def test_the_internal_api_does_not_exist_without_its_token(client: Client) -> None:
    response = client.post("/internal/runs/1/tiers", "{}", content_type="application/json")
    assert response.status_code == 404
