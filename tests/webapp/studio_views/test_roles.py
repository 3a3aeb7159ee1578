"""Every studio page: anonymous users go to the login page, annotators get 403."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.webapp.studio_views.factories import make_dataset, make_run, make_selection
from webapp.studio.models import PipelineJob


@pytest.fixture
def urls(db: None) -> list[tuple[str, str]]:
    dataset = make_dataset()
    run = make_run(dataset)
    selection = make_selection(dataset)
    sample = dataset.instructions.first().pk
    job = PipelineJob.objects.create(kind="order_tiers", dataset=dataset)
    return [
        ("get", "/studio/"),
        ("get", "/studio/datasets/"),
        ("get", "/studio/datasets/upload/"),
        ("get", f"/studio/datasets/{dataset.pk}/"),
        ("get", f"/studio/selections/{selection.pk}/"),
        ("post", f"/studio/datasets/{dataset.pk}/select/"),
        ("post", f"/studio/datasets/{dataset.pk}/jobs/new/"),
        ("post", f"/studio/jobs/{job.pk}/cancel/"),
        ("get", "/studio/runs/"),
        ("get", "/studio/runs/new/"),
        ("get", f"/studio/runs/{run.pk}/"),
        ("post", f"/studio/runs/{run.pk}/cancel/"),
        ("get", f"/studio/runs/{run.pk}/samples/"),
        ("get", f"/studio/runs/{run.pk}/samples/{sample}/"),
        ("post", f"/studio/runs/{run.pk}/samples/{sample}/tier/"),
        ("post", f"/studio/runs/{run.pk}/samples/{sample}/reference/"),
    ]


def test_it_sends_anonymous_users_to_login(client: Client, urls: list[tuple[str, str]]) -> None:
    for method, url in urls:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next="), url


def test_it_forbids_annotators(
    client: Client, annotator: User, urls: list[tuple[str, str]]
) -> None:
    client.force_login(annotator)
    for method, url in urls:
        assert getattr(client, method)(url).status_code == 403, url


def test_it_serves_researchers(staff_client: Client, urls: list[tuple[str, str]]) -> None:
    for method, url in urls:
        if method == "get":
            assert staff_client.get(url).status_code == 200, url
