"""The learning-signal diagnostic: prompt groups with reward variance and win rate per tier,
from hand-made judgments; on the run page and in the metrics export."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from tests.webapp.studio.factories import make_instruction, make_run
from webapp.studio.learning_signal import learning_signal, run_metrics_export
from webapp.studio.models import Instruction, Judgment, Run, StepMetric

pytestmark = pytest.mark.django_db

VERDICT = {1.0: "win", 0.5: "tie", 0.0: "loss", None: "invalid"}


def judge(run: Run, instruction: Instruction, step: int, tier: int, rewards: list) -> None:
    for index, reward in enumerate(rewards):
        Judgment.objects.create(
            run=run, instruction=instruction, step=step, rollout=f"r{index}",
            reference_tier=tier, reward=reward, verdict=VERDICT.get(reward, "win"),
        )  # fmt: skip


@pytest.fixture
def run() -> Run:
    run = make_run()
    a, b, c, d = (make_instruction(run.dataset) for _ in range(4))
    # Step 1: a loses every rollout against tier 2 (no signal), b wins one of four (signal),
    # c has only one valid reward (no signal), d is all invalid (no signal).
    judge(run, a, 1, 2, [0.0, 0.0, 0.0, 0.0])
    judge(run, b, 1, 0, [0.0, 1.0, 0.0, 0.0])
    judge(run, c, 1, 0, [0.5, None, None, None])
    judge(run, d, 1, 1, [None, None])
    # Step 2: a still loses everything; b wins everything against tier 1; c ties and wins.
    judge(run, a, 2, 2, [0.0, 0.0])
    judge(run, b, 2, 1, [1.0, 1.0])
    judge(run, c, 2, 0, [0.5, 1.0])
    # A pointwise-style group: rewards differ by a real amount -> signal.
    judge(run, d, 2, 1, [0.7, 0.7000001])
    StepMetric.objects.create(run=run, step=1, metrics={"step": 1, "reward_mean": 0.2,
                                                          "extra": {"kl_x": 0.5}})  # fmt: skip
    return run


def test_zero_variance_share_and_tier_win_rates(run: Run) -> None:
    first, second = learning_signal(run)
    assert (first.step, first.groups, first.signal_groups) == (1, 4, 1)
    assert first.signal_share == 0.25 and first.zero_variance_share == 0.75
    # Tier 0 at step 1: b's 1 win of 4, c's tie (its invalid rows left out) -> 1 / 5.
    assert first.win_rate_by_tier == {0: pytest.approx(0.2), 1: None, 2: 0.0}
    assert (second.groups, second.signal_groups) == (4, 2)  # c and d
    # Tier 1 at step 2: b's two wins and d's two (pointwise rewards stored as wins).
    assert second.win_rate_by_tier == {0: 0.5, 1: 1.0, 2: 0.0}


def test_a_run_without_judgments_has_no_signal_rows() -> None:
    assert learning_signal(make_run()) == []


def test_the_metrics_export_joins_step_metrics_and_signal(run: Run, staff_client: Client) -> None:
    table = run_metrics_export(run)
    assert table["columns"] == ["step", "reward_mean", "extra.kl_x", "groups", "signal_groups",
                                "zero_variance_groups", "signal_share", "win_rate_tier_0",
                                "win_rate_tier_1", "win_rate_tier_2"]  # fmt: skip
    assert table["rows"][1]["reward_mean"] is None and table["rows"][1]["signal_share"] == 0.5

    body = staff_client.get(f"/studio/runs/{run.pk}/metrics.csv").content.decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[1][:7] == ["1", "0.2", "0.5", "4", "1", "3", "0.25"]
    payload = staff_client.get(f"/studio/runs/{run.pk}/metrics.json").json()
    assert payload["run"] == run.pk and payload["rows"][0]["win_rate_tier_2"] == 0.0


def test_the_run_page_draws_the_signal_charts(run: Run, staff_client: Client) -> None:
    html = staff_client.get(f"/studio/runs/{run.pk}/").content.decode()
    assert "Learning signal: prompt groups with reward variance" in html
    assert "zero-variance groups" in html and "tier 2" in html
    assert f"/studio/runs/{run.pk}/metrics.csv" in html
