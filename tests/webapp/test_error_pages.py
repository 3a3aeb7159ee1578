"""Styled error pages with navigation, the skip link and the names of the two evaluation areas."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory, override_settings
from django.views import defaults

from webapp.studio.roles import grant_researcher


@pytest.fixture
def annotator(db: None) -> User:
    return User.objects.create_user("ann", password="pw-ann-123")


@pytest.fixture
def researcher(db: None) -> User:
    return grant_researcher(User.objects.create_user("res", password="pw-res-123"))


@override_settings(DEBUG=False)
def test_an_anonymous_404_is_styled_and_lists_no_routes(client: Client, db: None) -> None:
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'data-status="404"' in html
    assert "Page not found" in html
    assert 'href="/login/"' in html
    # Django's debug 404 lists the URL patterns; ours names none of them.
    assert "/internal/" not in html
    assert "URLconf" not in html


@override_settings(DEBUG=False)
def test_an_annotator_403_is_styled_with_navigation(client: Client, annotator: User) -> None:
    client.force_login(annotator)
    response = client.get("/studio/")
    assert response.status_code == 403
    html = response.content.decode()
    assert 'data-status="403"' in html
    assert "This page is for researchers." in html
    # The page keeps the annotator's navigation and a way out.
    assert ">Human evaluation</a>" in html
    assert "Log out" in html


def test_the_500_page_renders_without_a_request_context(db: None) -> None:
    from django.contrib.sessions.backends.db import SessionStore

    request = RequestFactory().get("/boom/")
    # A real request passed SessionMiddleware, which the CSRF check needs (CSRF_USE_SESSIONS).
    request.session = SessionStore()
    response = defaults.server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert 'data-status="500"' in html
    assert "Something went wrong" in html


def test_pages_have_a_skip_link_to_the_main_content(client: Client, researcher: User) -> None:
    client.force_login(researcher)
    html = client.get("/studio/").content.decode()
    assert '<a class="skip-link" href="#main">' in html
    assert '<main class="content" id="main"' in html


def test_the_two_evaluation_areas_have_distinct_names_and_link_to_each_other(
    client: Client, researcher: User
) -> None:
    client.force_login(researcher)
    benchmarks = client.get("/evals/").content.decode()
    assert "<h1>Benchmarks</h1>" in benchmarks
    assert ">Human evaluation</a>" in benchmarks
    human = client.get("/annotate/").content.decode()
    assert "<h1>Human evaluation</h1>" in human
    assert ">Benchmarks</a>" in human
