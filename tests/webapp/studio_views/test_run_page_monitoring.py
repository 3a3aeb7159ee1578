"""The run page's monitoring: chart settings (smoothing, a step range), hover values, the
configuration as grouped rows, the checkpoints table and the overlay of several runs."""

from __future__ import annotations

from pathlib import Path

from django.test import Client

from tests.webapp.studio_views.factories import make_dataset, make_run
from webapp.studio.models import Checkpoint

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_smoothing_and_a_step_range_reach_the_charts_and_the_poll(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=6)
    plain = staff_client.get(f"/studio/runs/{run.pk}/").content.decode()
    assert 'class="raw"' not in plain
    assert 'class="hover-band"' in plain  # hover values without any setting

    html = staff_client.get(f"/studio/runs/{run.pk}/?smooth=0.8&from=2&to=4").content.decode()
    assert 'class="raw"' in html  # the raw line stays, faint, under the moving average
    # The poll keeps the settings, so the next refresh draws the same charts.
    assert f'hx-get="/studio/runs/{run.pk}/?smooth=0.8&amp;from=2&amp;to=4"' in html
    assert '<option value="0.8" selected>' in html
    # Only steps 2 to 4 are drawn: the hover titles name them and no other.
    assert "step 2: " in html and "step 4: " in html
    assert "step 1: " not in html and "step 5: " not in html


def test_malformed_chart_settings_fall_back_to_the_defaults(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=3)
    response = staff_client.get(f"/studio/runs/{run.pk}/?smooth=abc&from=-4&to=9999999999999")
    assert response.status_code == 200
    assert 'class="raw"' not in response.content.decode()


def test_the_configuration_is_a_grouped_table(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=2)
    run.config = {
        "algorithm": "grpo",
        "max_steps": 10,
        "judge": {"kind": "heuristic", "model": ""},
        "learning_rate": 1e-05,
        "brand_new_setting": [1, 2],
    }
    run.save(update_fields=["config"])
    html = staff_client.get(f"/studio/runs/{run.pk}/").content.decode()
    assert "<h3>Method</h3>" in html and "<h3>Optimisation</h3>" in html
    assert '<th scope="row">judge.kind</th><td><code>heuristic</code>' in html
    assert "<code>1e-05</code>" in html
    # A setting the table does not know is shown under Other, not dropped.
    assert "<h3>Other</h3>" in html and "brand_new_setting" in html
    assert "{&#x27;algorithm&#x27;" not in html  # no pprint of the dict


def test_the_checkpoints_table_says_which_files_rotation_deleted(
    staff_client: Client, tmp_path: Path
) -> None:
    run = make_run(make_dataset(), steps=4)
    kept = tmp_path / "checkpoint-4"
    kept.mkdir()
    Checkpoint.objects.create(run=run, step=2, path=str(tmp_path / "checkpoint-2"))
    Checkpoint.objects.create(run=run, step=4, path=str(kept))
    html = staff_client.get(f"/studio/runs/{run.pk}/").content.decode()
    table = html.split('id="checkpoints"', 1)[1].split("</section>", 1)[0]
    assert table.index(">4<") < table.index(">2<")  # newest first
    assert "on disk" in table and "deleted by rotation" in table


def test_runs_overlay_on_shared_charts(staff_client: Client) -> None:
    dataset = make_dataset()
    first = make_run(dataset, name="alpha", steps=4)
    second = make_run(dataset, name="bravo", steps=6)
    response = staff_client.get(f"/studio/runs/compare/?run={first.pk}&run={second.pk}&run=999")
    assert response.status_code == 200
    html = response.content.decode()
    for title in ("Reward per step", "Win rate against the reference", "Completion length"):
        assert f'aria-label="{title}' in html
    assert f"alpha (#{first.pk})" in html and f"bravo (#{second.pk})" in html
    assert html.count("<polyline") >= 2 * 3
    assert "1 of the chosen runs do not exist" in html


def test_the_run_list_chooses_runs_to_compare(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=2)
    html = staff_client.get("/studio/runs/").content.decode()
    assert 'action="/studio/runs/compare/"' in html
    assert f'name="run" value="{run.pk}"' in html


def test_compare_without_runs_points_to_the_run_list(staff_client: Client) -> None:
    html = staff_client.get("/studio/runs/compare/").content.decode()
    assert "Choose runs to compare" in html


def test_annotators_cannot_compare_runs(client: Client, annotator) -> None:  # type: ignore[no-untyped-def]
    client.force_login(annotator)
    assert client.get("/studio/runs/compare/").status_code == 403
