"""The dataset page's "Prepare references" in Chromium (issue 13's chained pipelines, as a
researcher meets them): bad input shows every error at once next to its field, keeps what was
typed and queues nothing; good input queues the chain as one group whose later steps say which
job they wait for; cancelling the chain's first step is one click.

Task sends are recorded instead of going to the broker: what is walked is the page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.browser.test_pages_walk import PASSWORD, log_in
from tests.services import require_chromium
from tests.webapp.studio_views.factories import make_dataset
from webapp.studio.models import PipelineJob
from webapp.studio.roles import grant_researcher
from webapp.studio.tasks import run_pipeline_job

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]


def test_a_researcher_queues_the_prepare_chain_from_the_dataset_page(
    transactional_db: None, live_server: Any, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_chromium()
    monkeypatch.setenv(
        "WRITING_RL_ENDPOINTS", '[{"name": "vllm", "base_url": "http://gpu:8000/v1"}]'
    )
    sent: list[Any] = []
    monkeypatch.setattr(run_pipeline_job, "apply_async", lambda **kw: sent.append(kw["args"]))
    grant_researcher(User.objects.create_user("pria", password=PASSWORD))
    dataset = make_dataset("harbours", instructions=4)
    page = log_in(browser, live_server.url, "pria")
    page.goto(f"{live_server.url}/studio/datasets/{dataset.pk}/")

    prepare = page.locator("details#prepare")
    prepare.locator("summary").click()
    page.select_option("#id_prepare_endpoint", "vllm")
    page.fill("#id_prepare_model", "qwen-7b")
    page.fill("#id_prepare_name", "qwen")
    page.select_option("#id_prepare_scorer_endpoint", "heuristic")
    page.fill("#id_prepare_limit", "2")
    page.select_option("#id_prepare_split", "test")
    page.select_option("#id_prepare_strategy", "margin")
    page.fill("#id_prepare_policy", "")
    prepare.locator("button[type=submit]").click()

    # Both mistakes at once, each under its field; the chain's form stays open with the input.
    page.wait_for_selector("#id_prepare_split_errors")
    assert "Selection picks train instructions" in page.inner_text("#id_prepare_split_errors")
    assert "needs the policy to answer" in page.inner_text("#id_prepare_policy_errors")
    assert page.locator("details#prepare[open]").count() == 1
    assert page.input_value("#id_prepare_model") == "qwen-7b"
    assert not PipelineJob.objects.exists() and sent == []

    page.select_option("#id_prepare_split", "")
    page.select_option("#id_prepare_strategy", "")
    page.locator("details#prepare button[type=submit]").click()
    page.wait_for_url(re.compile(rf"/studio/datasets/{dataset.pk}/#jobs$"))
    write, grade, order = PipelineJob.objects.order_by("pk")
    assert "3 chained jobs queued" in page.inner_text("ul.messages")
    assert sent == [[write.pk]]  # only the first step has no input to wait for
    jobs = page.locator("#jobs")
    assert jobs.locator("tr.job-group").count() == 1
    assert "first 2 instruction(s)" in jobs.locator("tr.job-group").inner_text()
    assert f"waiting for job #{write.pk}" in page.inner_text(f"#job-{grade.pk}")
    assert f"waiting for job #{grade.pk}" in page.inner_text(f"#job-{order.pk}")

    page.locator(f"#job-{write.pk} button", has_text="Cancel").click()
    page.wait_for_url(re.compile(r"#jobs$"))
    write.refresh_from_db()
    assert write.cancel_requested or write.status == PipelineJob.Status.CANCELLED
    page.context.close()
