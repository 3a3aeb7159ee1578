"""The run's samples with stuck / mastered / climbing filters."""

from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.webapp.studio_views.factories import make_dataset, make_run
from webapp.studio.models import CurriculumState, CurriculumTransition, Run


def shown(html: str, run: Run) -> set[str]:
    return {
        external_id
        for external_id in run.dataset.instructions.values_list("external_id", flat=True)
        if f">{external_id}</a>" in html
    }


def setup_run() -> Run:
    """essays-0 climbs at steps 1 and 2; essays-1 mastered at step 28; essays-2 never moves;
    essays-3 moved at step 25. The run is at step 30."""
    run = make_run(make_dataset(instructions=4, references=3), steps=2)
    Run.objects.filter(pk=run.pk).update(current_step=30)
    run.refresh_from_db()
    states = {
        s.instruction.external_id: s
        for s in CurriculumState.objects.filter(run=run).select_related("instruction")
    }
    mastered = states["essays-1"]
    CurriculumState.objects.filter(pk=mastered.pk).update(tier=2, mastered=True)
    CurriculumTransition.objects.create(
        run=run, instruction=mastered.instruction, step=28, from_tier=2, to_tier=2, mastered=True
    )
    CurriculumTransition.objects.create(
        run=run, instruction=states["essays-3"].instruction, step=25, from_tier=0, to_tier=1
    )
    return run


def test_it_lists_every_sample_with_its_tier_and_last_change(staff_client: Client) -> None:
    run = setup_run()
    html = staff_client.get(f"/studio/runs/{run.pk}/samples/").content.decode()
    assert shown(html, run) == {"essays-0", "essays-1", "essays-2", "essays-3"}
    assert "mastered</span>" in html
    assert "step 28" in html and "never" in html


def test_it_filters_stuck_samples_by_steps_without_a_change(staff_client: Client) -> None:
    run = setup_run()
    stuck_20 = staff_client.get(f"/studio/runs/{run.pk}/samples/?show=stuck&n=20")
    assert shown(stuck_20.content.decode(), run) == {"essays-0", "essays-2"}
    stuck_5 = staff_client.get(f"/studio/runs/{run.pk}/samples/?show=stuck&n=5")
    assert shown(stuck_5.content.decode(), run) == {"essays-0", "essays-2", "essays-3"}
    stuck_40 = staff_client.get(f"/studio/runs/{run.pk}/samples/?show=stuck&n=40")
    assert shown(stuck_40.content.decode(), run) == set()


def test_it_filters_mastered_and_climbing_samples(staff_client: Client) -> None:
    run = setup_run()
    mastered = staff_client.get(f"/studio/runs/{run.pk}/samples/?show=mastered").content.decode()
    assert shown(mastered, run) == {"essays-1"}
    climbing = staff_client.get(f"/studio/runs/{run.pk}/samples/?show=climbing").content.decode()
    assert shown(climbing, run) == {"essays-0", "essays-3"}


def test_it_keeps_the_filter_in_pagination_links(staff_client: Client) -> None:
    run = make_run(make_dataset(instructions=60, references=2), steps=1)
    Run.objects.filter(pk=run.pk).update(current_step=50)
    html = staff_client.get(f"/studio/runs/{run.pk}/samples/?show=stuck&n=10").content.decode()
    assert 'href="?show=stuck&amp;n=10&amp;page=2"' in html


def test_it_ignores_bad_filter_values(staff_client: Client) -> None:
    run = setup_run()
    response = staff_client.get(f"/studio/runs/{run.pk}/samples/?show=nope&n=x")
    assert response.status_code == 200
    assert len(shown(response.content.decode(), run)) == 4


def test_it_costs_the_same_queries_for_few_and_many_samples(staff_client: Client) -> None:
    counts = []
    for name, size in (("few", 3), ("many", 70)):
        run = make_run(make_dataset(name, instructions=size), name=name, steps=2)
        for show in ("all", "stuck"):
            with CaptureQueriesContext(connection) as queries:
                staff_client.get(f"/studio/runs/{run.pk}/samples/?show={show}&n=1")
            counts.append(len(queries))
    assert counts[:2] == counts[2:], counts
