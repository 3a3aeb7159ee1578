"""Roles: admin, researcher (not a superuser), annotator; every route's access rule."""

from __future__ import annotations

import re
from collections.abc import Iterator
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.webapp.annotation.factories import make_campaign
from webapp.studio.permissions import is_researcher

# Every route outside the admin, by who may use it: the studio and the benchmark pages belong to
# researchers whole; the annotation routes and the rest are listed, so a new one must be added
# here and its access rule decided, not inherited by accident.
RESEARCHER_NAMESPACES = ("studio:", "evals:")
RESEARCHER_ONLY = {
    f"annotation:{name}"
    for name in (
        "campaign_new", "campaign", "results", "judge", "export_votes", "export_votes_csv",
        "export_preferences", "campaign_retry", "judge_run_retry",
    )
}  # fmt: skip
ANNOTATOR = {"home", "annotation:queue", "annotation:work", "annotation:assignment",
             "annotation:vote", "annotation:undo"}  # fmt: skip
PUBLIC = {"login", "logout", "ops:healthz"}
TOKEN_ONLY = {
    "ops:metrics",
    "ops:internal-tiers",
    "ops:internal-outcomes",
    "ops:internal-judgments",
}


def for_researchers(name: str) -> bool:
    return name.startswith(RESEARCHER_NAMESPACES) or name in RESEARCHER_ONLY


def routes() -> Iterator[tuple[str, str]]:
    """(name, example path) of every named route outside the admin site."""

    def walk(patterns: list, prefix: str, namespace: str) -> Iterator[tuple[str, str]]:
        for pattern in patterns:
            route = str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin":
                    continue
                space = pattern.namespace or namespace
                yield from walk(pattern.url_patterns, prefix + route, space)
            elif isinstance(pattern, URLPattern) and pattern.name:
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                path = re.sub(r"<int:\w+>", "999999", prefix + route)
                yield name, "/" + re.sub(r"<(?:\w+:)?\w+>", "x", path)

    yield from walk(get_resolver().url_patterns, "", "")


def _any_method(client: Client, path: str) -> int:
    status = client.get(path).status_code
    return client.post(path).status_code if status == 405 else status


def test_every_route_has_a_decided_access_rule() -> None:
    names = {name for name, _ in routes()}
    undecided = {
        name for name in names - ANNOTATOR - PUBLIC - TOKEN_ONLY if not for_researchers(name)
    }
    assert not undecided, f"routes without an access rule in this test: {sorted(undecided)}"
    assert len(names) > 40  # the walk found the app's routes


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_the_login_page_everywhere_but_public_routes(
    client: Client,
) -> None:
    for name, path in routes():
        if name in PUBLIC:
            continue
        status = _any_method(client, path)
        if name in TOKEN_ONLY:
            assert status in (401, 403, 404), (name, status)
            continue
        response = client.get(path)
        if response.status_code == 405:
            response = client.post(path)
        assert response.status_code == 302, (name, path, response.status_code)
        assert response["Location"].startswith("/login/"), name


def test_annotators_are_refused_every_researcher_route(annotator_client: Client) -> None:
    for name, path in routes():
        if for_researchers(name):
            assert _any_method(annotator_client, path) == 403, (name, path)


def test_researchers_are_refused_nothing_of_theirs(researcher_client: Client) -> None:
    for name, path in routes():
        if for_researchers(name):
            # 404 for the made-up id, 200 for lists, 400 for an empty POST; never 403.
            assert _any_method(researcher_client, path) != 403, (name, path)


def test_annotators_reach_only_their_own_campaigns_and_assignments(
    annotator: User, annotator_client: Client
) -> None:
    other = User.objects.create_user("someone-else")
    theirs = make_campaign([other], name="not yours")
    assert annotator_client.get(f"/annotate/campaigns/{theirs.pk}/work/").status_code == 404
    assert annotator_client.post(f"/annotate/campaigns/{theirs.pk}/work/").status_code == 404
    assert theirs.items.first().assignments.count() == 0


def test_the_demo_creates_three_distinct_roles(db: None) -> None:
    out = StringIO()
    call_command("create_demo_users", stdout=out)
    printed = out.getvalue()
    for role in ("admin", "researcher", "annotator"):
        assert re.search(rf"{role}\s+username: {role}\s+password: \S{{12,}}", printed), printed
    admin = User.objects.get(username="admin")
    researcher = User.objects.get(username="researcher")
    annotator = User.objects.get(username="annotator")
    assert admin.is_superuser and admin.is_staff
    assert not researcher.is_superuser and researcher.is_staff and is_researcher(researcher)
    assert not annotator.is_staff and not is_researcher(annotator)
    # Running it again resets passwords and keeps the roles.
    call_command("create_demo_users", stdout=StringIO())
    assert not User.objects.get(username="researcher").is_superuser


@pytest.mark.parametrize("weak", ["short", "password123", "12345678901", "researcher1"])
def test_the_demo_refuses_a_weak_password_and_changes_nothing(db: None, weak: str) -> None:
    with pytest.raises(CommandError) as caught:
        call_command("create_demo_users", "--password", weak, stdout=StringIO())
    assert caught.value.returncode == 2
    assert "--password" in str(caught.value)
    assert not User.objects.exists()


def test_the_demo_accepts_a_strong_password(db: None) -> None:
    call_command("create_demo_users", "--password", "tidal-lighthouse-47", stdout=StringIO())
    client = Client()
    response = client.post("/login/", {"username": "researcher", "password": "tidal-lighthouse-47"})
    assert response.status_code == 302


def test_researchers_see_only_their_part_of_the_admin(researcher_client: Client) -> None:
    index = researcher_client.get("/admin/").content.decode()
    assert "/admin/studio/run/" in index
    assert "/admin/auth/user/" not in index and "/admin/axes/" not in index
    assert researcher_client.get("/admin/auth/user/").status_code == 403
    assert researcher_client.get("/admin/auth/user/add/").status_code == 403
    assert researcher_client.get("/admin/studio/run/add/").status_code == 403


def test_an_admin_manages_users(admin_user: User) -> None:
    client = Client()
    client.force_login(admin_user)
    assert client.get("/admin/auth/user/").status_code == 200
    assert client.get("/studio/").status_code == 200


def test_staff_without_the_role_is_not_a_researcher(db: None) -> None:
    staff = User.objects.create_user("clerk", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/studio/").status_code == 403
    assert "/admin/studio/" not in client.get("/admin/").content.decode()
