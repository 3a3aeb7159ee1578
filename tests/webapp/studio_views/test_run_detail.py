"""The run page: progress, charts, the htmx polling partial that stops when the run ends."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.webapp.studio_views.factories import make_dataset, make_run
from webapp.studio.models import Judgment, Run, StepMetric

HTMX = {"HTTP_HX_REQUEST": "true"}


def unmasked(html: str) -> str:
    """The page without its CSRF token, which Django masks differently on every render."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_it_shows_progress_charts_and_a_polling_partial(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=4)
    response = staff_client.get(f"/studio/runs/{run.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="progress"' in html
    assert 'hx-trigger="every 2s"' in html
    assert f'hx-get="/studio/runs/{run.pk}/"' in html
    for title in (
        "Reward per step",
        "Win / tie / loss / invalid rates",
        "Samples per tier over steps",
        "Completion length (words)",
        "Judge latency (s)",
    ):
        assert f'aria-label="{title}"' in html, title
    assert "<polyline" in html and "<polygon" in html
    # The cancel form posts; the progression link keeps its href.
    assert f'action="/studio/runs/{run.pk}/cancel/"' in html
    assert f'href="/studio/runs/{run.pk}/samples/"' in html
    assert response["Vary"].count("HX-Request") == 1


def test_it_answers_htmx_with_the_fragment_only(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=2)
    response = staff_client.get(f"/studio/runs/{run.pk}/", **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="progress"')
    assert "<html" not in html and "Configuration" not in html
    assert "2/10" in html


@pytest.mark.parametrize("status", [Run.Status.SUCCEEDED, Run.Status.FAILED, Run.Status.CANCELLED])
def test_it_stops_polling_with_286_when_the_run_ended(staff_client: Client, status: str) -> None:
    run = make_run(make_dataset(), steps=2, status=status)
    response = staff_client.get(f"/studio/runs/{run.pk}/", **HTMX)
    assert response.status_code == 286
    html = response.content.decode()
    assert "hx-trigger" not in html
    assert f'data-status="{status}"' in html


def test_it_keeps_polling_a_queued_run(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=0, status=Run.Status.QUEUED)
    response = staff_client.get(f"/studio/runs/{run.pk}/", **HTMX)
    assert response.status_code == 200
    assert "No data yet." in response.content.decode()


def test_it_shows_the_run_error(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=1, status=Run.Status.FAILED)
    Run.objects.filter(pk=run.pk).update(error="CUDA out of memory <script>")
    html = staff_client.get(f"/studio/runs/{run.pk}/").content.decode()
    assert "CUDA out of memory &lt;script&gt;" in html


def test_it_404s_an_unknown_run(staff_client: Client) -> None:
    assert staff_client.get("/studio/runs/999999/").status_code == 404


def test_it_costs_the_same_queries_for_a_long_and_a_short_run(staff_client: Client) -> None:
    short = make_run(make_dataset("a", instructions=2), name="short", steps=2)
    long = make_run(make_dataset("b", instructions=30, references=5), name="long", steps=40)
    counts = []
    for run in (short, long):
        for headers in ({}, HTMX):
            cache.clear()
            with CaptureQueriesContext(connection) as queries:
                assert staff_client.get(f"/studio/runs/{run.pk}/", **headers).status_code == 200
            counts.append(len(queries))
    assert counts[0] == counts[2] and counts[1] == counts[3], counts


def test_it_redraws_the_charts_when_the_run_moves_on(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=2)
    before = staff_client.get(f"/studio/runs/{run.pk}/", **HTMX).content.decode()
    with CaptureQueriesContext(connection) as cached:
        again = staff_client.get(f"/studio/runs/{run.pk}/", **HTMX).content.decode()
    assert unmasked(again) == unmasked(before)
    assert not any("studio_stepmetric" in q["sql"] for q in cached.captured_queries)
    StepMetric.objects.create(run=run, step=3, metrics={"reward_mean": 9.5})
    Run.objects.filter(pk=run.pk).update(current_step=3)
    after = staff_client.get(f"/studio/runs/{run.pk}/", **HTMX).content.decode()
    assert unmasked(after) != unmasked(before) and "3/10" in after


def test_it_shows_judge_totals_and_an_unknown_win_rate_without_verdicts(
    staff_client: Client,
) -> None:
    run = make_run(make_dataset(instructions=2), steps=2)  # 2 x 2 x 2 judgments
    cache.clear()
    Judgment.objects.filter(run=run).update(attempts=2, prompt_tokens=100, completion_tokens=5)
    StepMetric.objects.filter(run=run, step=2).update(
        metrics={"win_rate": None, "invalid_rate": 1.0}
    )
    html = staff_client.get(f"/studio/runs/{run.pk}/", **HTMX).content.decode()
    assert re.search(r"data-win-rate>unknown<", html)  # never "0%" without a verdict
    assert "win rate at step 2" in html
    assert re.search(r"data-judge-tokens>840<", html) and "420 per step" in html
    assert "8 calls in 16 requests · 800 prompt + 40 completion tokens" in html
    StepMetric.objects.filter(run=run, step=2).update(metrics={"win_rate": 0.25})
    cache.clear()  # read once per step
    html = staff_client.get(f"/studio/runs/{run.pk}/", **HTMX).content.decode()
    assert re.search(r"data-win-rate>25%<", html)


def test_it_shows_a_run_waiting_for_its_judge(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=1)
    Run.objects.filter(pk=run.pk).update(
        judge_wait={
            "step": 2,
            "waited_s": 75.2,
            "budget_s": 600.0,
            "retries": 3,
            "invalid_rate": 1.0,
            "last_error": "connection refused <b>",
        }
    )
    html = staff_client.get(f"/studio/runs/{run.pk}/", **HTMX).content.decode()
    assert "Waiting for judge:</strong> step 2 got no verdict for 100% of its rollouts" in html
    assert "judged again 3 times over 75 of 600 s" in html
    assert "connection refused &lt;b&gt;" in html
    Run.objects.filter(pk=run.pk).update(judge_wait={})
    assert "data-judge-wait" not in staff_client.get(f"/studio/runs/{run.pk}/").content.decode()
