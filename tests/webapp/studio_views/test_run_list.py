from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.webapp.studio_views.factories import make_dataset, make_run
from webapp.studio.models import Run


def test_it_lists_runs_and_filters_by_status(staff_client: Client) -> None:
    dataset = make_dataset()
    running = make_run(dataset, name="alpha")
    done = make_run(dataset, name="beta", status=Run.Status.SUCCEEDED)
    html = staff_client.get("/studio/runs/").content.decode()
    assert (
        f'href="/studio/runs/{running.pk}/"' in html and f'href="/studio/runs/{done.pk}/"' in html
    )
    only_done = staff_client.get("/studio/runs/?status=succeeded").content.decode()
    assert "beta" in only_done and "alpha" not in only_done
    # An unknown status is ignored rather than an error.
    assert "alpha" in staff_client.get("/studio/runs/?status=bogus").content.decode()


def test_it_costs_the_same_queries_for_many_runs(staff_client: Client) -> None:
    dataset = make_dataset()
    make_run(dataset, name="one")
    with CaptureQueriesContext(connection) as few:
        staff_client.get("/studio/runs/")
    for index in range(15):
        make_run(make_dataset(f"d{index}", instructions=1), name=f"r{index}", steps=1)
    with CaptureQueriesContext(connection) as many:
        staff_client.get("/studio/runs/")
    assert len(few) == len(many)
