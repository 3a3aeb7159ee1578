"""Evaluate a finished tiny run in Chromium: from the run's page, one launch over its
checkpoints and the base policy runs on a real Celery worker; the page fills in live with the
score-per-checkpoint curve and the table with 95% intervals."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from rl_engine.models import save_tiny_model
from rl_engine.training import TrainConfig
from tests.conftest import WorkerProcess
from tests.services import require_chromium
from tests.webapp.evals.factories import make_dataset, make_instruction
from webapp.evals.models import RunEvaluation
from webapp.studio.models import Checkpoint
from webapp.studio.roles import grant_researcher
from webapp.studio.services.run_execution import run_execute
from webapp.studio.services.runs import run_claim, run_create

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.timeout(800)]

PASSWORD = "pw-browser-5817"


def test_it_evaluates_a_finished_run_from_its_page(
    transactional_db: None,
    celery_worker_process: WorkerProcess,
    live_server: Any,
    page: Any,
    settings: Any,
    tmp_path: Path,
) -> None:
    require_chromium()
    settings.WRITING_RL_RUNS_DIR = tmp_path / "runs"
    policy = save_tiny_model(tmp_path / "policy", seed=0)
    dataset = make_dataset("tides")
    for n in range(2):
        make_instruction(dataset, split="train", references=["Tides go.", "The sea breathes."])
        make_instruction(dataset, prompt=f"Write {n + 2}0 words on tides.", required_words=20)
    config = TrainConfig(
        policy=str(policy), num_generations=2, prompts_per_step=2, max_completion_tokens=5,
        kl_beta=0.0, learning_rate=1e-3, max_steps=2, checkpoint_every=1, device="cpu", seed=3,
    )  # fmt: skip
    run = run_create(name="tiny tides", dataset=dataset, config=config, enqueue=False)
    assert run_claim(run.pk, worker="test")
    assert run_execute(run.pk, worker="test")["status"] == "succeeded"
    assert sorted(Checkpoint.objects.filter(run=run).values_list("step", flat=True)) == [1, 2]
    grant_researcher(User.objects.create_user("rosa", password=PASSWORD))
    page.set_default_timeout(15_000)

    page.goto(f"{live_server.url}/studio/runs/{run.pk}/")
    page.fill("#id_username", "rosa")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(rf"/studio/runs/{run.pk}/$"))
    page.click("text=Evaluate this run")
    page.wait_for_url(re.compile(rf"/evals/runs/{run.pk}/evaluate/$"))
    page.check("input[name=benchmarks][value=longbench_write]")
    # Both checkpoints are offered and ticked; the base policy too.
    assert page.is_checked("input[name=checkpoints][value='1']")
    assert page.is_checked("input[name=checkpoints][value='2']")
    assert page.is_checked("#id_include_base")
    page.fill("#id_max_new_tokens", "6")
    page.select_option("#id_judge_endpoint", "heuristic")
    page.click("text=Evaluate this run")
    page.wait_for_url(re.compile(r"/evals/run-evaluations/\d+/$"))
    evaluation = RunEvaluation.objects.get()
    assert evaluation.members.count() == 3

    page.evaluate("window.__sameDocument = true")
    try:
        # Polling stops once every evaluation has finished; the table and curve are then in.
        page.wait_for_selector("#results:not([hx-trigger])", timeout=480_000)
    except Exception:
        states = list(evaluation.members.values_list("status", "error"))
        pytest.fail(f"evaluations: {states}\n{celery_worker_process.log()[-3000:]}")
    assert page.locator('[data-testid="checkpoint-curves"] polyline').count() == 1
    assert page.evaluate("window.__sameDocument") is True  # filled in without a reload
    table = page.inner_text('[data-testid="run-evaluation-table"]')
    assert "base · " in table and "step 1" in table and "step 2" in table
    assert "LongBench-Write S_l" in table and "S_l [0, 500)" in table
    assert re.search(r"\[\d+\.\d, \d+\.\d\]", table)  # an interval
    assert "N=2" in table
    assert page.inner_text('[data-testid="evaluations-done"]') == "3 / 3"
