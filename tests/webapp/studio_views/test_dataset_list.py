from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.webapp.studio_views.factories import make_dataset, make_run


def test_it_lists_datasets_with_counts(staff_client: Client) -> None:
    dataset = make_dataset("essays", instructions=4)
    make_run(dataset, steps=1)
    make_dataset("empty", instructions=0)
    html = staff_client.get("/studio/datasets/").content.decode()
    assert f'href="/studio/datasets/{dataset.pk}/"' in html
    assert "<td>4</td>" in html and "<td>1</td>" in html
    assert "empty" in html


def test_it_costs_the_same_queries_for_many_datasets(staff_client: Client) -> None:
    make_dataset("one")
    with CaptureQueriesContext(connection) as few:
        staff_client.get("/studio/datasets/")
    for index in range(12):
        make_dataset(f"more-{index}", instructions=5)
    with CaptureQueriesContext(connection) as many:
        staff_client.get("/studio/datasets/")
    assert len(few) == len(many)
