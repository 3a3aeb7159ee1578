from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.webapp.studio_views.factories import make_dataset, make_selection


def test_it_draws_the_learning_potential_histogram_and_marks_the_chosen(
    staff_client: Client,
) -> None:
    selection = make_selection(make_dataset(instructions=6), chosen=2)
    html = staff_client.get(f"/studio/selections/{selection.pk}/").content.decode()
    assert 'aria-label="Learning potential' in html
    assert html.count('class="bar marked"') >= 1
    assert "2 chosen of 6" in html
    assert html.count("✔ chosen") == 2


def test_it_filters_the_chosen_entries(staff_client: Client) -> None:
    selection = make_selection(make_dataset(instructions=6), chosen=2)
    html = staff_client.get(f"/studio/selections/{selection.pk}/?show=chosen").content.decode()
    assert html.count("✔ chosen") == 2 and ">no<" not in html


def test_it_costs_the_same_queries_at_any_size(staff_client: Client) -> None:
    counts = []
    for name, size in (("small", 3), ("big", 60)):
        selection = make_selection(make_dataset(name, instructions=size), chosen=2)
        with CaptureQueriesContext(connection) as queries:
            staff_client.get(f"/studio/selections/{selection.pk}/")
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
