"""/healthz: 200 with every check green, 503 naming what failed (details with the ops token)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import WorkerProcess

OPS_TOKEN = "o" * 40


@pytest.fixture(autouse=True)
def _short_ping(settings: Any) -> None:
    settings.WRITING_RL_HEALTHZ_PING_TIMEOUT_S = 1.0
    settings.WRITING_RL_HEALTHZ_CACHE_S = 0  # each test sees its own workers
    settings.WRITING_RL_OPS_TOKEN = OPS_TOKEN


@pytest.fixture
def client() -> Client:
    """A client that sends the ops token, so the answers carry each check's details."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {OPS_TOKEN}")


@pytest.mark.services
def test_it_is_healthy_with_a_database_a_broker_and_a_live_worker(
    client: Client, celery_worker_process: WorkerProcess
) -> None:
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "workers"}
    assert body["checks"]["workers"]["count"] >= 1
    assert any(name.startswith("test-") for name in body["checks"]["workers"]["names"])
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_it_is_unhealthy_without_a_worker(client: Client) -> None:
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert not body["checks"]["workers"]["ok"]
    assert "no Celery worker answered" in body["checks"]["workers"]["error"]


@pytest.mark.django_db
def test_it_is_unhealthy_when_the_broker_is_down_and_skips_the_ping(
    client: Client, settings: Any
) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["database"]["ok"]
    assert not body["checks"]["broker"]["ok"] and "Connection" in body["checks"]["broker"]["error"]
    assert body["checks"]["workers"]["error"] == "skipped: the broker is unreachable"


@pytest.mark.django_db
def test_it_runs_only_the_checks_asked_for(client: Client, settings: Any) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz?checks=database")
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"database"}
    assert client.get("/healthz?checks=database,disk").status_code == 400
