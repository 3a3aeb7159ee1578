"""An evaluation on a real Celery worker: generation and judging as two tasks, end to end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import WorkerProcess
from tests.webapp.evals.factories import make_dataset, make_instruction
from webapp.evals.models import EvalRun
from webapp.evals.services.eval_runs import eval_run_create
from webapp.evals.tasks import generate_eval_run

pytestmark = pytest.mark.services


def test_it_evaluates_the_tiny_model_on_a_worker(
    celery_worker_process: WorkerProcess, tiny_policy: Path
) -> None:
    dataset = make_dataset()
    for words in (60, 700, 2500):
        make_instruction(dataset, prompt=f"Write {words} words about bridges.",
                         required_words=words, domain="Engineering")  # fmt: skip
    eval_run = eval_run_create(
        benchmark="longbench_write", system_kind="base_model", base_model=str(tiny_policy),
        dataset=dataset, settings={"max_new_tokens": 8, "batch_size": 2},
        judge={"kind": "heuristic"},
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        eval_run.refresh_from_db()
        if not eval_run.is_active:
            break
        assert celery_worker_process.process.poll() is None, celery_worker_process.log()
        time.sleep(0.3)
    log = celery_worker_process.log()
    assert eval_run.status == EvalRun.Status.SUCCEEDED, f"{eval_run.error}\n{log[-3000:]}"
    assert "generate_eval_run" in log and "judge_eval_run" in log  # two tasks, two queues
    results = list(eval_run.results.order_by("id"))
    assert [r.required_words for r in results] == [60, 700, 2500]
    assert all(r.judged and r.score is not None for r in results)
    assert [row["count"] for row in eval_run.aggregates["buckets"]] == [1, 1, 1, 0, 3]
    assert eval_run.generation_s > 0 and eval_run.judging_s is not None
    # A re-delivered generation message finds the run finished and changes nothing.
    assert generate_eval_run.apply_async(args=[eval_run.pk]).get(timeout=60) == {
        "eval_run": eval_run.pk,
        "generated": False,
    }
    assert eval_run.results.count() == 3
