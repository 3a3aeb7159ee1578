"""Safe defaults: DEBUG off, no secret in error pages or logs, CSP, HSTS, CSRF in the session,
login throttling and Django's full set of password validators."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import get_default_password_validators
from django.test import Client, RequestFactory
from django.views.debug import technical_500_response

from webapp.ops.security import MASK, RedactSecretsLogFilter, redact

ROOT = Path(__file__).resolve().parents[2]
DB_PASSWORD = "s3cr3t-db-pa55word"
DB_URL = f"postgres://studio:{DB_PASSWORD}@db.internal:5432/studio"


def _django(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + code],
        cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_debug_is_off_unless_set() -> None:
    probe = "from django.conf import settings; print(settings.DEBUG)"
    assert _django(probe, DJANGO_SETTINGS_MODULE="webapp.settings") == "False"
    assert _django(probe, DJANGO_SETTINGS_MODULE="webapp.settings", DEBUG="1") == "True"


def test_production_sends_hsts_for_a_year_and_binds_csrf_to_the_session() -> None:
    probe = (
        "from django.conf import settings; import json; print(json.dumps({'hsts': "
        "settings.SECURE_HSTS_SECONDS, 'csrf_sessions': settings.CSRF_USE_SESSIONS, "
        "'debug': settings.DEBUG, 'csp': settings.CONTENT_SECURITY_POLICY['DIRECTIVES']}))"
    )
    values = json.loads(
        _django(
            probe,
            DJANGO_SETTINGS_MODULE="webapp.settings_production",
            SECRET_KEY="k" * 50,
            CELERY_BROKER_URL="redis://127.0.0.1:6379/15",
        )
    )
    assert values["hsts"] == 365 * 24 * 3600
    assert values["csrf_sessions"] is True and values["debug"] is False
    assert values["csp"]["script-src"] == ["'self'"] and values["csp"]["style-src"] == ["'self'"]


@pytest.mark.django_db
def test_an_anonymous_404_lists_no_routes(client: Client) -> None:
    response = client.get("/nothing-here/")
    assert response.status_code == 404
    assert b"internal/" not in response.content and b"admin/" not in response.content


def test_a_debug_error_page_shows_no_database_password(settings: Any) -> None:
    settings.DEBUG = True
    settings.DATABASE_URL = DB_URL
    settings.WRITING_RL_INTERNAL_API_TOKEN = "internal-token-" + "x" * 30
    request = RequestFactory().get("/boom/")
    try:
        connection_url = DB_URL  # noqa: F841 -- a frame variable the page would show
        raise RuntimeError(f"could not connect to {DB_URL}")
    except RuntimeError:
        response = technical_500_response(request, *sys.exc_info())
    page = response.content.decode()
    assert "RuntimeError" in page
    assert DB_PASSWORD not in page
    assert settings.WRITING_RL_INTERNAL_API_TOKEN not in page
    assert MASK in page


def test_log_lines_carry_no_url_password_nor_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-abcdefghijklmnop")
    record = logging.LogRecord(
        "writing_rl.test", logging.ERROR, __file__, 1,
        "broker %s refused; key %s", ("redis://:hunter2hunter2@redis:6379/0",
                                      "sk-live-abcdefghijklmnop"), None,
    )  # fmt: skip
    assert RedactSecretsLogFilter().filter(record)
    message = record.getMessage()
    assert "hunter2hunter2" not in message and "sk-live-abcdefghijklmnop" not in message
    assert "redis://:" + MASK + "@redis:6379/0" in message
    assert redact("postgres://u:p4ssw0rd@h/db") == f"postgres://u:{MASK}@h/db"


@pytest.mark.django_db
def test_pages_send_a_csp_without_inline_code(researcher_client: Client) -> None:
    response = researcher_client.get("/studio/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    for path in ("/studio/", "/studio/runs/new/", "/annotate/", "/evals/", "/login/"):
        html = researcher_client.get(path).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path  # inline script
        assert "<style" not in html and " style=" not in html, path
        assert " on" + "click=" not in html
    # htmx is told not to add its own <style> element nor to evaluate code.
    assert '"includeIndicatorStyles": false' in researcher_client.get("/studio/").content.decode()


@pytest.mark.django_db
def test_the_csrf_secret_lives_in_the_session_not_a_cookie(researcher: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(researcher)
    page = client.get("/studio/runs/new/")
    assert "csrftoken" not in page.cookies
    assert django_settings.CSRF_USE_SESSIONS


def test_every_password_validator_is_on() -> None:
    names = {type(v).__name__ for v in get_default_password_validators()}
    assert names == {
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    }


@pytest.mark.django_db
def test_logins_are_throttled_after_repeated_failures(researcher: User) -> None:
    from tests.security.conftest import PASSWORD

    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(django_settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/login/", {"username": "rosa", "password": "wrong-guess"})
        assert response.status_code == 200
    # The failure that reaches the limit is answered with the lockout, and so is then the
    # right password.
    last = client.post("/login/", {"username": "rosa", "password": "wrong-guess"})
    assert last.status_code == 429
    locked = client.post("/login/", {"username": "rosa", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    # Another address is not locked out by this one's failures.
    other = Client(REMOTE_ADDR="198.51.100.7")
    assert other.post("/login/", {"username": "rosa", "password": PASSWORD}).status_code == 302
    # A forged forwarded-for header does not get around the lock.
    forged = client.post(
        "/login/",
        {"username": "rosa", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="192.0.2.1",
    )
    assert forged.status_code == 429
