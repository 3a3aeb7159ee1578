"""Login, logout, roles, the dashboard shell, the admin and htmx from our static files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from webapp.studio.roles import grant_researcher

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def researcher(db: None) -> User:
    return grant_researcher(User.objects.create_user("res", password="pw-res-123"))


@pytest.fixture
def annotator(db: None) -> User:
    return User.objects.create_user("ann", password="pw-ann-123")


def test_it_sends_anonymous_users_to_login(client: Client, db: None) -> None:
    response = client.get("/studio/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_it_logs_a_researcher_in_to_the_dashboard(client: Client, researcher: User) -> None:
    response = client.post("/login/", {"username": "res", "password": "pw-res-123"}, follow=True)
    assert response.redirect_chain[-1][0] == "/studio/"
    html = response.content.decode()
    assert "Dashboard" in html
    # htmx comes from our own static files and CSRF travels in hx-headers.
    assert "/static/vendor/htmx/htmx.min.js" in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


def test_it_rejects_a_wrong_password(client: Client, researcher: User) -> None:
    response = client.post("/login/", {"username": "res", "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()


def test_it_forbids_the_dashboard_to_annotators(client: Client, annotator: User) -> None:
    client.force_login(annotator)
    assert client.get("/studio/").status_code == 403
    assert client.get("/admin/").status_code == 302  # the admin sends non-staff to its login


def test_it_logs_out_with_a_post(client: Client, researcher: User) -> None:
    client.force_login(researcher)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/studio/").status_code == 302


def test_it_serves_researchers_only_their_part_of_the_admin(
    client: Client, researcher: User
) -> None:
    assert not researcher.is_superuser
    client.force_login(researcher)
    index = client.get("/admin/")
    assert index.status_code == 200
    html = index.content.decode()
    assert "/admin/studio/run/" in html and "/admin/annotation/campaign/" in html
    assert "/admin/auth/user/" not in html and "/admin/auth/group/" not in html
    assert client.get("/admin/auth/user/").status_code == 403
    assert client.get("/admin/studio/run/").status_code == 200
    assert client.get("/admin/studio/run/add/").status_code == 403  # view only


def test_it_serves_the_whole_admin_to_the_admin(client: Client, db: None) -> None:
    admin = User.objects.create_superuser("boss", password="pw-boss-123")
    client.force_login(admin)
    html = client.get("/admin/").content.decode()
    assert "/admin/auth/user/" in html and "/admin/studio/run/" in html


def test_it_vendors_htmx_with_its_licence() -> None:
    vendored = ROOT / "webapp/static/vendor/htmx"
    assert "htmx" in (vendored / "htmx.min.js").read_text()[:2000]
    assert "Zero-Clause BSD" in (vendored / "LICENSE").read_text()


def test_it_refuses_production_settings_without_a_secret_key() -> None:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "webapp.settings_production"}
    code = "import django; django.setup()"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_it_runs_production_settings_with_debug_off() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "webapp.settings_production",
        "SECRET_KEY": "x" * 50,
        "DEBUG": "1",
    }
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
