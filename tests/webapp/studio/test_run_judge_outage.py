"""A run whose judge gives no verdicts stops with the reason; a short outage loses no step.

Tiny policy on CPU, trained in-process, judged over HTTP by the fake OpenAI-compatible server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rl_engine.models import save_tiny_model
from rl_engine.testing import ChatCall, FakeOpenAIServer
from rl_engine.training import JudgeOutagePolicy
from tests.webapp.studio.factories import make_dataset, make_instruction
from tests.webapp.studio.test_runs import tiny_config
from webapp.studio.models import AuditLog, Judgment, Run
from webapp.studio.services.run_execution import run_execute
from webapp.studio.services.runs import run_claim, run_create, run_resume

pytestmark = pytest.mark.django_db

ROLLOUTS_PER_STEP = 4  # 2 prompts x 2 generations, each judged once


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("policy") / "tiny", seed=0)


def answers(broken: range) -> Any:
    """A judge that prefers the rollout, except for the requests numbered in ``broken``."""

    def policy(call: ChatCall) -> str:
        return "I cannot decide." if call.index in broken else "Better: [[B]]"

    return policy


def train(settings: Any, tmp_path: Path, policy_path: Path, server: FakeOpenAIServer,
          budget_s: float) -> Run:  # fmt: skip
    settings.WRITING_RL_RUNS_DIR = tmp_path
    dataset = make_dataset()
    for _ in range(2):
        make_instruction(dataset, references=2)
    judge = {"endpoint": "fake-judge", "model": "judge", "max_retries": 0, "max_reasks": 0,
             "hedge": False, "timeout_s": 10}  # fmt: skip
    # The trainer's own outage handling is under test: no judge check before the run.
    config = tiny_config(
        policy_path, judge=judge, judge_outage_budget_s=budget_s, judge_check_pairs=0
    )
    with pytest.MonkeyPatch.context() as patch:  # the deployment declares the judge
        patch.setenv(
            "WRITING_RL_ENDPOINTS",
            json.dumps([{"name": "fake-judge", "base_url": server.base_url}]),
        )
        run = run_create(name="judged", dataset=dataset, config=config, enqueue=False)
        assert run_claim(run.pk, worker="me")
        run_execute(run.pk, worker="me")
    run.refresh_from_db()
    return run


def test_a_run_whose_judge_stops_answering_fails_with_the_reason_and_can_be_resumed(
    settings: Any, tmp_path: Path, tiny_policy: Path
) -> None:
    # Step 1 is judged; from step 2 on the judge never gives a verdict.
    broken = range(ROLLOUTS_PER_STEP, 10_000)
    with FakeOpenAIServer(latency_s=0.0, policy=answers(broken)) as server:
        run = train(settings, tmp_path, tiny_policy, server, budget_s=0)
        assert run.status == Run.Status.FAILED
        assert run.error.startswith("waiting for judge: step 2: the judge gave no usable verdict")
        assert "no [[A]]/[[B]]/[[C]] verdict" in run.error and "Traceback" not in run.error
        assert run.judge_wait == {}
        (checkpoint,) = run.checkpoints.all()
        assert checkpoint.step == 1 and Path(checkpoint.path).is_dir()  # to resume from
        rows = Judgment.objects.filter(run=run)  # step 1's only, all with a verdict
        assert set(rows.values_list("step", "verdict", "order_verdict")) == {(1, "win", "B")}

        # The judge is fixed; the run resumes from its checkpoint and finishes.
        server.policy = answers(range(0))
        run_resume(run=run)
        assert run_claim(run.pk, worker="me")
        with pytest.MonkeyPatch.context() as patch:  # the worker still sees the declaration
            patch.setenv(
                "WRITING_RL_ENDPOINTS",
                json.dumps([{"name": "fake-judge", "base_url": server.base_url}]),
            )
            run_execute(run.pk, worker="me")
    run.refresh_from_db()
    assert (run.status, run.current_step, run.error) == ("succeeded", 2, "")
    assert sorted(Judgment.objects.filter(run=run).values_list("step", flat=True)) == (
        [1] * ROLLOUTS_PER_STEP + [2] * ROLLOUTS_PER_STEP
    )
    assert AuditLog.objects.get(run=run, action="run_resume").details["from_step"] == 1


def test_an_outage_shorter_than_the_budget_loses_no_step(
    settings: Any, tmp_path: Path, tiny_policy: Path
) -> None:
    # Step 2's first judging finds the judge out; it is judged again 5 s later.
    broken = range(ROLLOUTS_PER_STEP, 2 * ROLLOUTS_PER_STEP)
    with FakeOpenAIServer(latency_s=0.0, policy=answers(broken)) as server:
        run = train(settings, tmp_path, tiny_policy, server, budget_s=60)
        requests = server.stats().requests
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.current_step == 2 and run.judge_wait == {}
    assert requests == 3 * ROLLOUTS_PER_STEP  # step 2's rollouts were judged twice
    rows = Judgment.objects.filter(run=run)
    assert sorted(rows.values_list("step", flat=True)) == [1] * 4 + [2] * 4
    assert set(rows.values_list("verdict", flat=True)) == {"win"}
    metrics = run.step_metrics.get(step=2).metrics
    assert metrics["judge_retries"] == 1 and metrics["invalid_rate"] == 0.0


def test_a_run_without_a_single_verdict_never_ends_succeeded(
    settings: Any, tmp_path: Path, tiny_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the hold switched off (every step may go without verdicts), the end still checks.
    monkeypatch.setattr(JudgeOutagePolicy, "too_few_verdicts", lambda self, counts: False)
    with FakeOpenAIServer(latency_s=0.0, policy=answers(range(10_000))) as server:
        run = train(settings, tmp_path, tiny_policy, server, budget_s=0)
    assert run.status == Run.Status.FAILED
    assert "none of the run's 8 judgments gave a verdict" in run.error


# The run's heartbeat thread beats on its own connection, which sees only committed rows.
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_judge_blocks_across_heartbeats_still_ends_failed_with_the_reason(
    settings: Any, tmp_path: Path, tiny_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every judge call takes longer than several heartbeats and gives no verdict: the lease
    # stays held while the calls block, and the spent budget ends the run, fenced by it.
    monkeypatch.setenv("WRITING_RL_HEARTBEAT_S", "0.2")
    with FakeOpenAIServer(latency_s=1.0, policy=answers(range(10_000))) as server:
        run = train(settings, tmp_path, tiny_policy, server, budget_s=0)
        requests = server.stats().requests
    assert requests >= ROLLOUTS_PER_STEP
    assert run.status == Run.Status.FAILED, (run.status, run.error)
    assert run.error.startswith("waiting for judge: step 1: the judge gave no usable verdict")
    assert run.heartbeat_at is not None and run.heartbeat_at > run.started_at
    assert not Judgment.objects.filter(run=run).exists()
