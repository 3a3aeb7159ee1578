"""Production settings: what they enforce, and JSON log lines a shipper can parse."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from webapp.ops.celery_limits import GpuTaskTimeLimits
from webapp.ops.logging import JsonFormatter

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import json, logging.config
from django.conf import settings
import django; django.setup()
print(json.dumps({
    "debug": settings.DEBUG,
    "hsts": settings.SECURE_HSTS_SECONDS,
    "session_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_secure": settings.CSRF_COOKIE_SECURE,
    "visibility": settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout"),
    "gpu_limit": settings.WRITING_RL_GPU_TASK_TIME_LIMIT,
    "time_limit": settings.CELERY_TASK_TIME_LIMIT,
    "formatter": settings.LOGGING["formatters"]["json"]["()"],
}))
from django.test import Client
client = Client()
print(json.dumps({
    "login": client.get("/login/").status_code,
    "healthz": client.get("/healthz?checks=nope").status_code,
    "internal": client.post("/internal/runs/1/tiers", "{}", "application/json").status_code,
}))
logging.getLogger("writing_rl.test").warning("hello %s", "world", extra={"run_id": 7})
"""


def run_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {
        **{k: v for k, v in os.environ.items() if k not in {"SECRET_KEY"}},
        "DJANGO_SETTINGS_MODULE": "webapp.settings_production",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=full, capture_output=True, text=True
    )


def test_it_enforces_https_cookies_limits_and_logs_json() -> None:
    result = run_with({"SECRET_KEY": "s" * 50, "WRITING_RL_GPU_TASK_TIME_LIMIT": "7200"})
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-2])
    # HTTPS for people; health checks, scrapes and the cluster's internal API stay on HTTP.
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "login": 301, "healthz": 400, "internal": 404,
    }  # fmt: skip
    assert values["debug"] is False and values["session_secure"] and values["csrf_secure"]
    assert values["hsts"] > 0
    assert values["visibility"] > max(values["gpu_limit"], values["time_limit"])
    log_line = json.loads(result.stderr.strip().splitlines()[-1])
    assert log_line["message"] == "hello world" and log_line["level"] == "WARNING"
    assert log_line["run_id"] == 7 and log_line["logger"] == "writing_rl.test"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": "s" * 50, "CELERY_VISIBILITY_TIMEOUT": "60"}, "CELERY_VISIBILITY_TIMEOUT"),
        ({"SECRET_KEY": "s" * 50, "WRITING_RL_INTERNAL_API_TOKEN": "short"}, "shorter than 32"),
    ],
)
def test_it_refuses_to_start_misconfigured(env: dict[str, str], message: str) -> None:
    result = run_with(env)
    assert result.returncode != 0
    assert message in result.stderr


def test_it_formats_exceptions_and_odd_values_as_one_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed %d", (3,), sys.exc_info()
        )
    record.path = Path("/tmp/p")
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed 3" and "ValueError: boom" in entry["exc"]
    assert entry["path"] == "/tmp/p"


def test_it_gives_gpu_tasks_the_long_time_limit(settings: pytest.FixtureRequest) -> None:
    settings.WRITING_RL_GPU_TASK_TIME_LIMIT = 3600  # type: ignore[attr-defined]

    class Task:
        def __init__(self, name: str) -> None:
            self.name = name

    limits = GpuTaskTimeLimits()
    assert limits.annotate(Task("workers.tasks.training.train_run")) == {
        "time_limit": 3600,
        "soft_time_limit": 3000,
    }
    assert limits.annotate(Task("workers.tasks.system.ping")) is None
