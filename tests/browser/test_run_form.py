"""The new-run form in Chromium: a preset fills the fields in place, the selection list
follows the dataset, a submit with several mistakes shows them all (Advanced opens by
itself), and a judge endpoint the deployment declares — not the default one, an
OpenAI-compatible server started here — is checked from the form and stored with the run,
which the run page then clones."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from rl_engine.testing import FakeOpenAIServer
from tests.services import require_chromium
from tests.webapp.studio_views.factories import make_dataset, make_selection
from webapp.studio.models import JudgeCheck, Run
from webapp.studio.roles import grant_researcher

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PASSWORD = "pw-browser-6203"


@pytest.fixture
def lab_judge(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    """A second, non-default judge endpoint the deployment declares: an OpenAI-compatible
    server on this machine (the live server runs in this process, so it sees the variable)."""
    with FakeOpenAIServer(latency_s=0.01) as server:
        monkeypatch.setenv(
            "WRITING_RL_ENDPOINTS",
            json.dumps([{"name": "lab-judge", "base_url": server.base_url, "models": ["judge-m"]}]),
        )
        yield server


@pytest.fixture
def no_queued_tasks() -> Iterator[None]:
    """The launched run is queued on the broker with no worker here: purge it afterwards, so
    no later test's worker trains a run of this test's database."""
    yield
    from workers.celery_app import app

    app.control.purge()


def test_a_researcher_fills_the_form_from_a_preset_fixes_every_error_and_picks_a_judge(
    transactional_db: None,
    live_server: Any,
    page: Any,
    lab_judge: FakeOpenAIServer,
    no_queued_tasks: None,
) -> None:
    require_chromium()
    essays, poems = make_dataset(), make_dataset("poems")
    essays_selection, poems_selection = make_selection(essays), make_selection(poems)
    grant_researcher(User.objects.create_user("ines", password=PASSWORD))
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/studio/runs/new/?dataset={essays.pk}")
    page.fill("#id_username", "ines")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/studio/runs/new/"))
    page.evaluate("window.__sameDocument = true")

    # The selection list follows the dataset (htmx swaps the field in place).
    options = "#id_selection option"
    assert page.locator(f"{options}[value='{essays_selection.pk}']").count() == 1
    assert page.locator(f"{options}[value='{poems_selection.pk}']").count() == 0
    page.select_option("#id_dataset", str(poems.pk))
    page.wait_for_selector(f"{options}[value='{poems_selection.pk}']", state="attached")
    assert page.locator(f"{options}[value='{essays_selection.pk}']").count() == 0
    page.select_option("#id_dataset", str(essays.pk))
    page.wait_for_selector(f"{options}[value='{essays_selection.pk}']", state="attached")

    # A preset fills the training settings in place; the name typed before stays.
    page.fill("#id_name", "essays, small")
    assert page.input_value("#id_max_completion_tokens") == "256"
    assert page.input_value("#id_device") == "auto"
    assert page.locator("#advanced").get_attribute("open") is None  # Advanced starts closed
    page.select_option("#id_preset", "cpu-small")
    page.wait_for_selector("#fill-note")
    assert page.input_value("#id_max_completion_tokens") == "96"
    assert page.input_value("#id_num_generations") == "4"
    assert page.input_value("#id_device") == "cpu"
    assert page.input_value("#id_name") == "essays, small"
    assert page.input_value("#id_dataset") == str(essays.pk)
    assert page.evaluate("window.__sameDocument") is True  # filled in without a reload
    assert "no measurement yet" in page.inner_text("#estimate")

    # Several mistakes, one in Advanced: all shown at once, Advanced opens by itself.
    page.fill("#id_name", "")
    page.fill("#id_max_steps", "0")
    page.click("#advanced > summary")
    page.fill("#id_temperature", "0")
    page.fill("#id_top_p", "2")
    page.click("text=Launch run")
    page.wait_for_selector("#error-summary")
    summary = page.inner_text("#error-summary")
    for label in ("Name", "Temperature", "Max steps", "Top-p"):
        assert label in summary, summary
    assert page.locator("#error-summary li").count() == 4
    assert page.locator("#advanced").get_attribute("open") is not None
    for field in ("name", "temperature", "max_steps", "top_p"):
        assert page.locator(f"#id_{field}_errors").is_visible(), field
    assert "TrainConfig" not in page.content()
    assert page.locator("#error-summary a[href='#id_top_p']").count() == 1  # links the field
    assert not Run.objects.exists()

    # Fix them; choose the lab's endpoint, not the default, and check it from the form.
    page.fill("#id_name", "essays, lab judge")
    page.fill("#id_temperature", "1.0")
    page.fill("#id_max_steps", "2")
    page.fill("#id_top_p", "1.0")
    assert page.input_value("#id_judge_endpoint") == "heuristic"  # the default
    page.select_option("#id_judge_endpoint", "lab-judge")
    page.fill("#id_judge_model", "judge-m")
    page.fill("#id_judge_check_pairs", "2")
    page.click("button[name=check_judge]")
    page.wait_for_selector("#judge-check")
    check = JudgeCheck.objects.get()
    assert check.judge_spec["endpoint"] == "lab-judge", check.judge_spec
    assert lab_judge.bodies and {body["model"] for body in lab_judge.bodies} == {"judge-m"}
    assert page.input_value("#id_judge_endpoint") == "lab-judge"  # kept for the launch
    page.click("text=Launch run")
    page.wait_for_url(re.compile(r"/studio/runs/\d+/$"))
    run = Run.objects.get()
    assert run.config["judge"]["endpoint"] == "lab-judge"
    assert run.config["judge"]["model"] == "judge-m"
    assert (run.config["max_completion_tokens"], run.config["device"]) == (96, "cpu")

    # The run page clones it: every field filled in, the judge included.
    page.click("text=Clone this run")
    page.wait_for_url(re.compile(rf"/studio/runs/new/\?clone={run.pk}$"))
    assert page.input_value("#id_name") == "essays, lab judge (copy)"
    assert page.input_value("#id_judge_endpoint") == "lab-judge"
    assert page.input_value("#id_max_completion_tokens") == "96"
    assert page.input_value("#id_max_steps") == "2"
