"""A researcher's day, in Chromium: log in, upload a dataset, grade its references with a
pipeline job, launch a tiny run on a real Celery worker, watch both finish live (the polled
partials update without a reload), and open one sample's reference progression."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from rl_engine.models import save_tiny_model
from tests.conftest import WorkerProcess
from tests.services import require_chromium
from webapp.studio.models import Run
from webapp.studio.roles import grant_researcher

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.timeout(300)]

PASSWORD = "pw-browser-4471"


def dataset_file(folder: Path) -> Path:
    records = [
        {
            "id": f"tide-{index}",
            "prompt": f"Write a short paragraph about tides, take {index}.",
            "required_words": 40,
            "references": [
                {"writer": "weak", "text": "Tides go up and down.", "score": 2},
                {
                    "writer": "strong",
                    "text": "Twice a day the sea breathes in and out, pulled by the moon.",
                    "score": 8,
                },
            ],
        }
        for index in range(2)
    ]
    path = folder / "tides.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.fixture
def chromium() -> None:
    require_chromium()


def test_it_takes_a_researcher_from_upload_to_a_finished_run(
    chromium: None,
    transactional_db: None,
    celery_worker_process: WorkerProcess,
    live_server: Any,
    page: Any,
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.WRITING_RL_RUNS_DIR = tmp_path / "runs"
    policy = save_tiny_model(tmp_path / "policy", seed=0)
    grant_researcher(User.objects.create_user("maria", password=PASSWORD))
    page.set_default_timeout(15_000)

    # Log in; the login page is where an anonymous visit to the studio lands.
    page.goto(f"{live_server.url}/studio/")
    assert "/login/" in page.url
    page.fill("#id_username", "maria")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/studio/$"))

    # Upload a dataset.
    page.click("text=Upload a dataset")
    page.fill("#id_name", "tides")
    page.set_input_files("#id_file", str(dataset_file(tmp_path)))
    page.click("text=Import")
    page.wait_for_url(re.compile(r"/studio/datasets/\d+/$"))
    assert "tide-0" in page.content() and "tide-1" in page.content()

    # Grade the references again from the Pipeline panel; the jobs table follows the job on
    # the worker until it is done, without a reload.
    page.click("text=Score references")
    assert page.input_value("#id_score_references_scorer_endpoint") == "heuristic"
    page.check("#id_score_references_rescore")
    page.click("#pipeline details[open] >> text=Queue job")
    page.wait_for_selector("text=Score references queued")
    page.evaluate("window.__sameDocument = true")
    try:
        page.wait_for_selector("#jobs .badge.status-succeeded", timeout=60_000)
    except Exception:
        pytest.fail(f"the job did not finish:\n{celery_worker_process.log()[-3000:]}")
    assert page.evaluate("window.__sameDocument") is True
    assert "100%" in page.inner_html("#jobs")
    assert page.get_attribute("#jobs", "hx-trigger") is None  # polling stopped

    # Launch a tiny run with the heuristic judge.
    page.click("text=New run on this dataset")
    page.fill("#id_name", "tiny tides")
    page.click("#advanced > summary")  # checkpoint_every and seed sit in Advanced
    for name, value in {
        "policy": str(policy),
        "num_generations": "2",
        "prompts_per_step": "2",
        "max_completion_tokens": "5",
        "kl_beta": "0",
        "learning_rate": "0.001",
        "max_steps": "2",
        "checkpoint_every": "1",
        "seed": "3",
    }.items():
        page.fill(f"#id_{name}", value)
    page.select_option("#id_device", "cpu")
    assert page.input_value("#id_judge_endpoint") == "heuristic"
    page.click("text=Launch run")
    page.wait_for_url(re.compile(r"/studio/runs/\d+/$"))
    run = Run.objects.get(name="tiny tides")

    # Watch it finish without a reload: a marker set on the window survives only if the page
    # is never reloaded, while the polled partial swaps in new status and charts.
    first_status = page.get_attribute("#progress [data-status]", "data-status")
    assert first_status in {"queued", "running"}, first_status
    assert page.locator("text=Cancel run").count() == 1
    page.evaluate("window.__sameDocument = true")
    try:
        page.wait_for_selector('#progress [data-status="succeeded"]', timeout=90_000)
    except Exception:  # show what the worker said before failing
        run.refresh_from_db()
        pytest.fail(f"run is {run.status}: {run.error}\n{celery_worker_process.log()[-3000:]}")
    assert page.evaluate("window.__sameDocument") is True
    progress = page.inner_html("#progress")
    assert "2/2" in progress
    assert "<polyline" in progress  # the charts arrived with the partial
    assert page.get_attribute("#progress", "hx-trigger") is None  # polling stopped
    assert page.locator("text=Cancel run").count() == 0  # it lives in the partial

    # One sample's reference progression.
    page.click("text=Reference progression per sample")
    page.wait_for_url(re.compile(r"/samples/$"))
    page.click("table a >> nth=0")
    page.wait_for_url(re.compile(r"/samples/\d+/$"))
    content = page.content()
    assert "Tier over the run" in content
    assert "Judge's rationale" in content or "Judge&#x27;s rationale" in content
    assert page.locator("#current-reference").count() == 1
    assert page.locator("article.rollout").count() >= 1
