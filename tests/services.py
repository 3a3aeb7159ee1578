"""Gates for tests that need a real service (PostgreSQL, Redis, a worker, Chromium).

Without ``REQUIRE_SERVICES=1`` a missing service skips the test; with it (as in CI) the test
fails, so CI can never pass by skipping the tests that matter.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES", "") in {"1", "true", "yes"}


def missing(service: str, why: str) -> None:
    message = f"{service} is required but unavailable: {why}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (REQUIRE_SERVICES=1 forbids skipping)", pytrace=False)
    pytest.skip(message)


def uses_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def require_postgres() -> None:
    if not uses_postgres():
        missing("PostgreSQL", "DATABASE_URL does not point at PostgreSQL")


def redis_url() -> str | None:
    url = settings.CELERY_BROKER_URL
    return url if url.startswith("redis://") else None


def require_redis() -> str:
    url = redis_url()
    if url is None:
        missing("Redis", "CELERY_BROKER_URL is not a redis:// URL")
        raise AssertionError("unreachable")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        missing("Redis", f"{url} does not answer: {exc}")
    return url


CHROMIUM = "/usr/bin/chromium"


def require_chromium() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        missing("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
        raise AssertionError("unreachable")
    return path
