"""Evaluation pages: list, new, detail (live progress), cancel, roles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.webapp.evals.factories import (
    add_results,
    make_dataset,
    make_instruction,
    make_succeeded_eval,
)
from webapp.evals.models import EvalRun

pytestmark = pytest.mark.django_db


def test_it_keeps_evaluations_for_researchers(client: Client, annotator: User) -> None:
    assert client.get("/evals/")["Location"].startswith("/login/")
    client.force_login(annotator)
    assert client.get("/evals/").status_code == 403
    assert client.get("/evals/compare/").status_code == 403


def test_it_lists_evaluations_with_their_scores(staff_client: Client) -> None:
    make_succeeded_eval("writingbench", {"score": 71.24}, name="wb eval")
    make_succeeded_eval("pairwise", {"score": 40.0}, name="pw eval")
    html = staff_client.get("/evals/").content.decode()
    assert "wb eval" in html and "71.2" in html and "pw eval" in html
    html = staff_client.get("/evals/?benchmark=pairwise").content.decode()
    assert "pw eval" in html and "wb eval" not in html
    assert 'href="/evals/"' in staff_client.get("/studio/").content.decode()  # in the nav


def test_the_new_form_creates_and_enqueues_an_evaluation(
    staff_client: Client, django_capture_on_commit_callbacks, settings: Any
) -> None:
    settings.WRITING_RL_MODEL_ROOTS = [Path("/models")]  # a base model must live under a root
    dataset = make_dataset()
    make_instruction(dataset, required_words=100)
    form = {
        "benchmark": "longbench_write", "system_kind": "base_model", "base_model": "/models/tiny",
        "dataset": dataset.pk, "split": "eval", "max_new_tokens": 16, "batch_size": 2,
        "temperature": 0.0, "iterations": 1, "context_tokens": 2048, "judge_endpoint": "heuristic",
    }  # fmt: skip
    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_client.post("/evals/new/", form)
    eval_run = EvalRun.objects.get()
    assert response["Location"] == f"/evals/{eval_run.pk}/"
    assert len(callbacks) == 1  # the generation task, sent once the row is committed
    assert eval_run.settings["max_new_tokens"] == 16 and eval_run.base_model == "/models/tiny"
    assert eval_run.judge["endpoint"] == "heuristic" and eval_run.status == "queued"


def test_the_new_form_shows_why_an_evaluation_cannot_start(staff_client: Client) -> None:
    dataset = make_dataset()
    make_instruction(dataset)
    form = {
        "benchmark": "pairwise", "system_kind": "base_model", "dataset": dataset.pk,
        "split": "eval", "max_new_tokens": 16, "batch_size": 2, "temperature": 0.0,
        "iterations": 1, "context_tokens": 2048, "judge_endpoint": "heuristic",
    }  # fmt: skip
    response = staff_client.post("/evals/new/", form)
    assert response.status_code == 400
    assert "pairwise needs exactly one baseline" in response.content.decode()
    assert EvalRun.objects.count() == 0


def test_the_detail_page_polls_until_the_evaluation_ends(staff_client: Client) -> None:
    dataset = make_dataset()
    eval_run = EvalRun.objects.create(
        name="live", benchmark="longbench_write", system_kind="base_model", dataset=dataset,
        status=EvalRun.Status.GENERATING, progress=0.25,
    )  # fmt: skip
    response = staff_client.get(f"/evals/{eval_run.pk}/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'hx-trigger="every 2s"' in html and "<h1>" not in html  # just the fragment
    assert 'aria-valuenow="25"' in html
    EvalRun.objects.filter(pk=eval_run.pk).update(status="succeeded", progress=1.0)
    response = staff_client.get(f"/evals/{eval_run.pk}/", HTTP_HX_REQUEST="true")
    assert response.status_code == 286  # htmx stops polling
    assert "hx-trigger" not in response.content.decode()


def test_the_detail_page_shows_the_length_table_and_charts(staff_client: Client) -> None:
    aggregates = {
        "score": 55.0, "S_l": 60.0, "S_q": 50.0, "S_bar": 55.0, "quality_invalid": 1,
        "items": 3, "errors": 1, "domain_scores": {"Food": 40.0, "Travel": 70.0},
        "buckets": [{"bucket": "[0, 500)", "count": 3, "S_l": 60.0, "S_q": 50.0,
                     "S_bar": 55.0, "quality_count": 2}],
    }  # fmt: skip
    eval_run = make_succeeded_eval("longbench_write", aggregates, generation_s=12.5, judging_s=3.0)
    add_results(eval_run, [(100, 80, 60.0, "Food"), (300, 1200, 20.0, "Food"),
                           (1000, 900, 70.0, "Travel")])  # fmt: skip
    html = staff_client.get(f"/evals/{eval_run.pk}/").content.decode()
    assert "12.5 s" in html and "3.0 s" in html  # the time split
    assert "[0, 500)" in html and "1 quality judgment(s) failed" in html
    assert html.count("<svg") == 2  # length scatter and domain bars
    assert "required 300, produced 1,200" in html
    assert "Travel: 70.0" in html


def test_it_cancels_an_active_evaluation(staff_client: Client) -> None:
    eval_run = EvalRun.objects.create(
        name="x", benchmark="writingbench", system_kind="base_model", status="queued"
    )
    response = staff_client.post(f"/evals/{eval_run.pk}/cancel/")
    assert response.status_code == 302
    eval_run.refresh_from_db()
    assert eval_run.status == "cancelled"
    assert staff_client.get(f"/evals/{eval_run.pk}/cancel/").status_code == 405


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("/evals/new/", "Start evaluation"),
        ("/evals/long-input/", "Import a file"),
        ("/evals/ablations/", "No grid yet."),
        ("/evals/ablations/new/", "Launch the grid"),
        ("/evals/compare/", "No succeeded evaluation yet."),
    ],
)
def test_the_forms_and_lists_render(staff_client: Client, url: str, text: str) -> None:
    response = staff_client.get(url)
    assert response.status_code == 200
    assert text in response.content.decode()


def test_the_new_form_starts_from_a_checkpoint_link(staff_client: Client) -> None:
    from tests.webapp.evals.factories import make_checkpoint, make_run

    checkpoint = make_checkpoint(make_run(make_dataset()), 7)
    html = staff_client.get(f"/evals/new/?checkpoint={checkpoint.pk}").content.decode()
    assert f'<option value="{checkpoint.pk}" selected>' in html
    assert '<option value="checkpoint" selected>' in html


@pytest.mark.parametrize(
    ("benchmark", "aggregates", "text"),
    [
        ("writingbench", {"score": 72.5, "overall_1_10": 7.25, "criteria_scored": 8,
                          "criteria_invalid": 2}, "2 criterion judgment(s) failed"),
        ("pairwise", {"score": 62.5, "wins": 2, "ties": 1, "losses": 1, "invalid": 1,
                      "adjusted_win_rate": 0.625, "length_controlled_win_rate": None},
         "Adjusted win rate 62.5% · length-controlled –"),
        ("creative", {"score": 61.0, "low": 55.5, "high": 66.0, "pieces": 6, "invalid": 0},
         "95% bootstrap interval [55.5, 66.0]"),
        ("longbench_v2", {"score": 50.0, "correct": 1, "total": 2, "invalid": 1, "truncated": 2,
                          "by_difficulty": {"hard": 50.0}, "by_length": {"long": 50.0}},
         "Accuracy 50.0% (1/2"),
    ],
)  # fmt: skip
def test_the_detail_page_explains_each_benchmarks_aggregates(
    staff_client: Client, benchmark: str, aggregates: dict[str, object], text: str
) -> None:
    eval_run = make_succeeded_eval(benchmark, aggregates)
    html = staff_client.get(f"/evals/{eval_run.pk}/").content.decode()
    assert text in html


def test_a_queued_evaluation_shows_no_item_count(staff_client: Client) -> None:
    eval_run = EvalRun.objects.create(
        name="waiting", benchmark="writingbench", system_kind="base_model", status="queued"
    )
    html = staff_client.get(f"/evals/{eval_run.pk}/").content.decode()
    assert "dict_items" not in html and "items judged" not in html
    EvalRun.objects.filter(pk=eval_run.pk).update(aggregates={"items": 4, "errors": 1})
    html = staff_client.get(f"/evals/{eval_run.pk}/").content.decode()
    assert "4 · 1 with errors" in html


def test_the_lenient_extraction_is_labelled_on_every_page_and_export(
    staff_client: Client,
) -> None:
    aggregates = {"score": 75.0, "correct": 3, "total": 4, "invalid": 0, "truncated": 0,
                  "by_difficulty": {}, "by_length": {}, "extraction": "lenient"}  # fmt: skip
    lenient = make_succeeded_eval(
        "longbench_v2", aggregates, settings={"extraction": "lenient"}, name="lenient run"
    )
    official = make_succeeded_eval(
        "longbench_v2",
        {**aggregates, "extraction": "official"},
        base_model="other",
        settings={"extraction": "official"},
    )
    add_results(lenient, [(None, 5, 100.0, "")])
    label = "lenient extraction (not the official scorer)"
    assert label in staff_client.get(f"/evals/{lenient.pk}/").content.decode()
    assert label not in staff_client.get(f"/evals/{official.pk}/").content.decode()
    assert label in staff_client.get("/evals/").content.decode()
    ids = f"{lenient.pk},{official.pk}"
    html = staff_client.get(f"/evals/compare/?runs={ids}").content.decode()
    assert f'<span class="badge variant">{label}</span></td>' in html  # on the lenient cell
    table = b"".join(staff_client.get(f"/evals/compare.csv?runs={ids}").streaming_content)
    assert label in table.decode() and table.decode().count(label) == 1
    items = b"".join(staff_client.get(f"/evals/{lenient.pk}/results.csv").streaming_content)
    assert label in items.decode()


def test_the_new_form_offers_only_splits_that_exist(staff_client: Client) -> None:
    dataset = make_dataset()
    make_instruction(dataset, split="train", required_words=100)
    html = staff_client.get(f"/evals/new/?dataset={dataset.pk}").content.decode()
    assert '<option value="train"' in html and '<option value="eval"' not in html
    form = {
        "benchmark": "longbench_write", "system_kind": "base_model", "base_model": "tiny",
        "dataset": dataset.pk, "split": "eval", "max_new_tokens": 16, "batch_size": 2,
        "temperature": 0.0, "iterations": 1, "context_tokens": 2048, "judge_kind": "heuristic",
    }  # fmt: skip
    response = staff_client.post("/evals/new/", form)
    assert response.status_code == 400
    assert "has no &#x27;eval&#x27; split; it has train" in response.content.decode()
    assert EvalRun.objects.count() == 0
