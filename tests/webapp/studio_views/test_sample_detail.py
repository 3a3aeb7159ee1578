"""One sample's reference progression: timeline, current reference, latest rollouts, rationale."""

from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.webapp.studio_views.factories import make_dataset, make_run


def test_it_shows_the_timeline_the_current_reference_and_the_latest_rollouts(
    staff_client: Client,
) -> None:
    run = make_run(make_dataset(instructions=2, references=3), steps=2)
    sample = run.dataset.instructions.order_by("id").first()
    html = staff_client.get(f"/studio/runs/{run.pk}/samples/{sample.pk}/").content.decode()
    assert 'aria-label="Tier over the run"' in html
    assert "tier 0 → 1" in html and "tier 1 → 2" in html
    # The sample climbed to tier 2: that reference is the current one.
    current = html[html.index('id="current-reference"') :][:300]
    assert "Reference 2 for essays-0" in current
    assert "rollout 1 of step 2" in html
    assert "Rationale for step 2 rollout 1." in html
    assert html.index("step 2</span>") < html.index("step 1</span>")  # newest first
    assert "policy won" in html and "policy lost" in html
    # Staff see both interventions.
    assert f'action="/studio/runs/{run.pk}/samples/{sample.pk}/tier/"' in html
    assert "Add as tier 3" in html


def test_it_404s_an_instruction_from_another_dataset(staff_client: Client) -> None:
    run = make_run(make_dataset("a"))
    stranger = make_dataset("b").instructions.first()
    assert staff_client.get(f"/studio/runs/{run.pk}/samples/{stranger.pk}/").status_code == 404


def test_it_costs_the_same_queries_for_a_long_history(staff_client: Client) -> None:
    counts = []
    for name, steps in (("short", 1), ("long", 30)):
        run = make_run(make_dataset(name, references=5), name=name, steps=steps, rollouts=4)
        sample = run.dataset.instructions.order_by("id").first()
        with CaptureQueriesContext(connection) as queries:
            staff_client.get(f"/studio/runs/{run.pk}/samples/{sample.pk}/")
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_it_counts_rollouts_not_judge_calls_when_both_orders_were_judged(
    staff_client: Client,
) -> None:
    from webapp.studio.models import Judgment, Run
    from webapp.studio.selectors import run_rollout_judgments

    run = make_run(make_dataset(instructions=1, references=2), steps=1, rollouts=2)
    Run.objects.filter(pk=run.pk).update(config={**run.config, "reward_position": "both"})
    run.refresh_from_db()
    # Each rollout's second order: same outcome, the policy shown first.
    for row in list(Judgment.objects.filter(run=run)):
        Judgment.objects.create(
            run=run, instruction=row.instruction, step=row.step, rollout=row.rollout,
            verdict=row.verdict, order_verdict="A", position="first",
        )  # fmt: skip
    Judgment.objects.filter(run=run).exclude(position="first").update(position="second")
    assert Judgment.objects.filter(run=run).count() == 4
    assert run_rollout_judgments(run).count() == 2
    sample = run.dataset.instructions.get()
    html = staff_client.get(f"/studio/runs/{run.pk}/samples/{sample.pk}/").content.decode()
    assert "<td>1</td><td>1</td><td>0</td><td>1</td><td>0</td>" in html  # step 1: 1 W, 1 L
