"""Faults on an evaluation (the tiny random-init model writes the responses, a pairwise judge
on an OpenAI-compatible server judges them against reference tier 0): a worker killed while
judging, and a worker stopped past the stale time, taken over and continued. Results are
stored a chunk of items at a time, so the resumed judging pays only for the items not judged
yet, and the final results and aggregates are an uninterrupted evaluation's."""

from __future__ import annotations

import json
import os
import signal
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from rl_engine.models import save_tiny_model
from rl_engine.testing import ChatCall, FakeOpenAIServer
from tests.faults.harness import require_services, wait_for, worker
from tests.webapp.evals.factories import make_dataset, make_instruction
from webapp.evals.models import EvalItemResult, EvalRun
from webapp.evals.services.eval_runs import eval_run_create
from webapp.evals.services.execution import eval_run_execute
from webapp.studio.models import AuditLog, Dataset

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ITEMS = 12  # three judging chunks of four (batch size 1), two calls an item


def verdict(call: ChatCall) -> str:
    """A verdict that depends on the texts only: an uninterrupted evaluation's verdicts."""
    return "[[A]]" if zlib.crc32(call.user.encode()) % 3 else "[[B]]"


def declare(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer) -> dict[str, str]:
    """The deployment declares the judge's endpoint (before a worker starts: it inherits the
    environment); returns the judge spec that names it."""
    monkeypatch.setenv(
        "WRITING_RL_ENDPOINTS", json.dumps([{"name": "fake", "base_url": server.base_url}])
    )
    return {"endpoint": "fake", "model": "m"}


def dataset() -> Dataset:
    data = make_dataset()
    for i in range(ITEMS):
        make_instruction(
            data, prompt=f"Describe lighthouse {i} at night.", references=[f"Beam {i}. " * 4]
        )
    return data


def evaluation(policy: Path, data: Dataset, judge: dict[str, str], **kwargs: Any) -> EvalRun:
    return eval_run_create(
        benchmark="pairwise", system_kind="base_model", base_model=str(policy), dataset=data,
        baseline_tier=0, settings={"max_new_tokens": 6, "batch_size": 1}, judge=judge, **kwargs,
    )  # fmt: skip


def judged(eval_run: EvalRun) -> int:
    return EvalItemResult.objects.filter(eval_run=eval_run, judged=True).count()


def results(eval_run: EvalRun) -> list[tuple[Any, ...]]:
    return sorted(
        (r.item_id, r.iteration, r.response, r.score, r.details.get("outcome"), r.error)
        for r in EvalItemResult.objects.filter(eval_run=eval_run)
    )


def assert_like(eval_run: EvalRun, baseline: EvalRun) -> None:
    eval_run.refresh_from_db()
    assert eval_run.status == EvalRun.Status.SUCCEEDED, eval_run.error
    assert judged(eval_run) == ITEMS
    assert results(eval_run) == results(baseline)
    assert eval_run.aggregates == baseline.aggregates


def uninterrupted(policy: Path, data: Dataset, judge: dict[str, str]) -> EvalRun:
    baseline = evaluation(policy, data, judge, enqueue=False, name="baseline")
    return eval_run_execute(baseline.pk)


def test_an_evaluation_whose_worker_is_killed_resumes_paying_only_for_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_services()
    policy = save_tiny_model(tmp_path / "policy", seed=0)
    data = dataset()
    with FakeOpenAIServer(latency_s=1.0, policy=verdict) as server:
        judge = declare(monkeypatch, server)
        baseline = uninterrupted(policy, data, judge)
        with worker(tmp_path, "doomed") as doomed:
            eval_run = evaluation(policy, data, judge)
            wait_for(lambda: judged(eval_run) >= 4, "the first judged chunk", alive=(doomed,))
            os.kill(doomed.process.pid, signal.SIGKILL)
            doomed.process.wait(timeout=10)
        stored_before = judged(eval_run)
        assert EvalRun.objects.get(pk=eval_run.pk).status == EvalRun.Status.JUDGING
        calls_before = server.stats().requests
        with worker(tmp_path, "rescuer", beat=True) as rescuer:
            wait_for(
                lambda: EvalRun.objects.get(pk=eval_run.pk).status not in EvalRun.ACTIVE,
                "the evaluation to finish",
                alive=(rescuer,),
            )
        resumed_calls = server.stats().requests - calls_before
    assert_like(eval_run, baseline)
    assert resumed_calls == 2 * (ITEMS - stored_before)  # only the missing items are paid for
    assert (
        AuditLog.objects.filter(action="eval_requeue", details__eval_run=eval_run.pk).count() == 1
    )
    assert eval_run.epoch == 3  # generation, judging, the judging taken over


def test_a_stopped_evaluation_worker_taken_over_stores_nothing_when_it_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_services()
    policy = save_tiny_model(tmp_path / "policy", seed=0)
    data = dataset()
    with FakeOpenAIServer(latency_s=1.5, policy=verdict) as server:
        judge = declare(monkeypatch, server)
        baseline = uninterrupted(policy, data, judge)
        with worker(tmp_path, "sleeper") as sleeper:
            eval_run = evaluation(policy, data, judge)
            wait_for(lambda: judged(eval_run) >= 4, "the first judged chunk", alive=(sleeper,))
            os.kill(sleeper.process.pid, signal.SIGSTOP)  # its second chunk is in flight
            with worker(tmp_path, "rescuer", beat=True) as rescuer:
                wait_for(
                    lambda: EvalRun.objects.get(pk=eval_run.pk).status not in EvalRun.ACTIVE,
                    "the takeover to finish the evaluation",
                    alive=(rescuer,),
                )
                eval_run.refresh_from_db()
                finished = (eval_run.finished_at, eval_run.aggregates, results(eval_run))
                os.kill(sleeper.process.pid, signal.SIGCONT)
                wait_for(lambda: "no longer held" in sleeper.log(), "the old worker", timeout=60)
                time.sleep(2)
            log = sleeper.log()
    assert_like(eval_run, baseline)
    assert (eval_run.finished_at, eval_run.aggregates, results(eval_run)) == finished
    assert f":{rescuer.process.pid}:" in EvalRun.objects.get(pk=eval_run.pk).claimed_by
    assert "no longer held" in log, log[-3000:]
