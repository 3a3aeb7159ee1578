from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.webapp.studio_views.factories import make_dataset, make_run, make_selection


def test_it_shows_instructions_with_their_references_by_tier(staff_client: Client) -> None:
    dataset = make_dataset("essays", instructions=2, references=3)
    selection = make_selection(dataset)
    run = make_run(dataset)
    html = staff_client.get(f"/studio/datasets/{dataset.pk}/").content.decode()
    assert "essays-0" in html and "essays-1" in html
    assert html.index("writer-0") < html.index("writer-1") < html.index("writer-2")
    assert "3 references" in html
    assert f'href="/studio/selections/{selection.pk}/"' in html
    assert f'href="/studio/runs/{run.pk}/"' in html
    assert f'href="/studio/runs/new/?dataset={dataset.pk}"' in html


def test_it_paginates_instructions(staff_client: Client) -> None:
    dataset = make_dataset("big", instructions=45)
    first = staff_client.get(f"/studio/datasets/{dataset.pk}/").content.decode()
    assert "page 1 of 3" in first and "big-0<" in first and "big-20<" not in first
    last = staff_client.get(f"/studio/datasets/{dataset.pk}/?page=3").content.decode()
    assert "big-44<" in last and "big-0<" not in last


def test_it_costs_the_same_queries_for_small_and_big_datasets(staff_client: Client) -> None:
    counts = []
    for name, size in (("small", 2), ("big", 40)):
        dataset = make_dataset(name, instructions=size, references=5)
        make_selection(dataset)
        make_run(dataset, name=name)
        with CaptureQueriesContext(connection) as queries:
            staff_client.get(f"/studio/datasets/{dataset.pk}/")
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_it_404s_an_unknown_dataset(staff_client: Client) -> None:
    assert staff_client.get("/studio/datasets/424242/").status_code == 404


def test_a_reference_written_from_an_unreadable_outline_is_flagged(staff_client: Client) -> None:
    from webapp.studio.models import Reference

    dataset = make_dataset("essays", instructions=1, references=2)
    flagged = Reference.objects.filter(instruction__dataset=dataset, tier=1).get()
    flagged.metadata = {"plan_fallback": True}
    flagged.save()
    html = staff_client.get(f"/studio/datasets/{dataset.pk}/").content.decode()
    assert html.count("outline unreadable: even sections") == 1
    assert html.index("writer-1") < html.index("outline unreadable")
