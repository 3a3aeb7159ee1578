from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.webapp.studio_views.factories import make_dataset, make_run
from webapp.studio.models import Run


def test_it_counts_runs_by_status_and_links_the_pages(staff_client: Client) -> None:
    dataset = make_dataset()
    make_run(dataset, name="a")
    make_run(dataset, name="b", status=Run.Status.FAILED)
    html = staff_client.get("/studio/").content.decode()
    assert 'href="/studio/runs/?status=failed"><span class="num">1</span>' in html
    for href in (
        "/studio/datasets/",
        "/studio/runs/",
        "/studio/runs/new/",
        "/studio/datasets/upload/",
    ):
        assert f'href="{href}"' in html


def test_it_costs_the_same_queries_with_more_runs(staff_client: Client) -> None:
    make_run(make_dataset("x"), name="first")
    with CaptureQueriesContext(connection) as few:
        staff_client.get("/studio/")
    for index in range(12):
        make_run(make_dataset(f"d{index}", instructions=1), name=f"r{index}", steps=1)
    with CaptureQueriesContext(connection) as many:
        staff_client.get("/studio/")
    assert len(few) == len(many)
