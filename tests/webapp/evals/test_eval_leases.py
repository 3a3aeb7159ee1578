"""Evaluations on the job lifecycle: each phase is claimed with a lease; a phase whose worker
was taken over stores nothing; a resumed generation writes only the missing responses; the
sweep sends the judging phase of a handed-over run whose message was lost."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tests.webapp.evals.factories import make_dataset, make_instruction
from webapp.evals.models import EvalItemResult, EvalRun
from webapp.evals.services import execution
from webapp.evals.services.eval_runs import eval_run_create
from webapp.evals.services.execution import eval_run_generate, eval_run_judge
from webapp.evals.services.jobs import EVAL_JUDGE_KIND
from webapp.studio.models import AuditLog, Instruction
from webapp.studio.services.leases import STALE_AFTER, LeaseLost, lease_claim, sweep_kind

pytestmark = pytest.mark.django_db(transaction=True)


def evaluation(tiny_policy: Path, count: int = 3) -> EvalRun:
    dataset = make_dataset()
    for i in range(count):
        make_instruction(dataset, prompt=f"Write {50 + i} words on tea.", required_words=50 + i)
    make_instruction(dataset, prompt="Training only.", split=Instruction.Split.TRAIN)
    return eval_run_create(
        benchmark="longbench_write", system_kind="base_model", base_model=str(tiny_policy),
        dataset=dataset, split="eval", settings={"max_new_tokens": 4, "batch_size": 1},
        judge={"kind": "heuristic"}, enqueue=False,
    )  # fmt: skip


def test_a_resumed_generation_writes_only_the_missing_responses(
    tiny_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eval_run = evaluation(tiny_policy)
    first = lease_claim(EvalRun, eval_run.pk, worker="lost", **execution.GENERATE_PHASE)
    assert first is not None
    # The lost worker had stored the first item's response.
    item = Instruction.objects.filter(split="eval").order_by("id").first()
    assert item is not None
    EvalItemResult.objects.create(
        eval_run=eval_run, item_id=str(item.pk), instruction=item, response="kept", iteration=0
    )
    EvalRun.objects.filter(pk=eval_run.pk).update(heartbeat_at=timezone.now() - 2 * STALE_AFTER)
    asked: list[str] = []
    real = execution.generate_responses

    def counting(items: Any, *args: Any, **kwargs: Any) -> Any:
        asked.extend(i.item_id for i in items)
        return real(items, *args, **kwargs)

    monkeypatch.setattr(execution, "generate_responses", counting)
    assert eval_run_generate(eval_run.pk, worker="rescuer")
    eval_run.refresh_from_db()
    assert (eval_run.status, eval_run.epoch, eval_run.claimed_by) == ("judging", 2, "")
    assert str(item.pk) not in asked and len(asked) == 2
    assert EvalItemResult.objects.get(eval_run=eval_run, item_id=str(item.pk)).response == "kept"
    assert eval_run_judge(eval_run.pk, worker="judge")
    eval_run.refresh_from_db()
    assert eval_run.status == EvalRun.Status.SUCCEEDED and eval_run.epoch == 3


def test_a_judging_phase_taken_over_stores_nothing(tiny_policy: Path) -> None:
    eval_run = evaluation(tiny_policy, count=1)
    assert eval_run_generate(eval_run.pk, worker="gen")
    old = lease_claim(EvalRun, eval_run.pk, worker="old", **execution.JUDGE_PHASE)
    assert old is not None
    EvalRun.objects.filter(pk=eval_run.pk).update(heartbeat_at=timezone.now() - 2 * STALE_AFTER)
    assert eval_run_judge(eval_run.pk, worker="new")
    with pytest.raises(LeaseLost):
        old.update(progress=0.7)
    assert not old.finish(EvalRun.Status.FAILED, error="stale")
    eval_run.refresh_from_db()
    assert eval_run.status == EvalRun.Status.SUCCEEDED and eval_run.error == ""


def test_the_sweep_sends_the_judging_of_a_handed_over_run_whose_message_was_lost(
    tiny_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webapp.evals.tasks import judge_eval_run

    sent: list[int] = []
    monkeypatch.setattr(judge_eval_run, "apply_async", lambda args, **_: sent.append(args[0]))
    eval_run = evaluation(tiny_policy, count=1)
    assert eval_run_generate(eval_run.pk, worker="gen")  # handed over; its send never happened
    later = timezone.now() + timedelta(minutes=1)
    assert sweep_kind(EVAL_JUDGE_KIND, now=later).resent == [eval_run.pk]
    assert sent == [eval_run.pk]
    assert AuditLog.objects.get(action="eval_resend").details["eval_run"] == eval_run.pk
    assert sweep_kind(EVAL_JUDGE_KIND, now=later).resent == []  # sent: left alone


class CountingGrader:
    """The heuristic grader, counting the responses it was asked to grade; ``fail`` makes
    every grade a failed one (no values, an error), as a judge endpoint that is down does."""

    def __init__(self, fail: bool = False) -> None:
        from rl_engine.evaluation.grading import HeuristicGrader

        self.inner = HeuristicGrader()
        self.fail = fail
        self.asked: list[str] = []

    async def grade(self, requests: Any) -> list[Any]:
        from rl_engine.evaluation.grading import RubricScore

        self.asked += [r.response for r in requests]
        if self.fail:
            return [RubricScore(None, error="connection refused") for _ in requests]
        return list(await self.inner.grade(requests))


def test_a_resumed_judging_phase_judges_only_the_missing_items_and_aggregates_all(
    tiny_policy: Path,
) -> None:
    from rl_engine.evaluation.runner import Evaluators

    baseline = evaluation(tiny_policy, count=5)
    assert eval_run_generate(baseline.pk, worker="gen")
    assert eval_run_judge(baseline.pk, Evaluators(grader=CountingGrader()), worker="judge")
    baseline.refresh_from_db()

    eval_run = evaluation(tiny_policy, count=5)
    assert eval_run_generate(eval_run.pk, worker="gen")
    # A judging worker stored the first chunk (4 items: batch size 1) and was lost.
    lost = lease_claim(EvalRun, eval_run.pk, worker="lost", **execution.JUDGE_PHASE)
    assert lost is not None
    rows = list(EvalItemResult.objects.filter(eval_run=eval_run).order_by("id"))
    first = CountingGrader()
    execution._store_judged(
        rows[:4],
        execution.judge_items_sync(
            *_items_of(eval_run), [execution._generated_of(r) for r in rows[:4]],
            settings=_settings_of(eval_run), evaluators=Evaluators(grader=first),
        ),
    )  # fmt: skip
    EvalRun.objects.filter(pk=eval_run.pk).update(heartbeat_at=timezone.now() - 2 * STALE_AFTER)
    resumed = CountingGrader()
    assert eval_run_judge(eval_run.pk, Evaluators(grader=resumed), worker="rescuer")
    eval_run.refresh_from_db()
    assert eval_run.status == EvalRun.Status.SUCCEEDED and eval_run.epoch == 3
    assert resumed.asked == [rows[4].response]  # pays only for the missing item
    assert eval_run.aggregates == baseline.aggregates
    scores = sorted(EvalItemResult.objects.filter(eval_run=eval_run).values_list("score"))
    assert scores == sorted(EvalItemResult.objects.filter(eval_run=baseline).values_list("score"))


def _items_of(eval_run: EvalRun) -> tuple[Any]:
    from webapp.evals.services.items import eval_items

    return (eval_items(eval_run)[0],)


def _settings_of(eval_run: EvalRun) -> Any:
    from webapp.evals.services.config import build_settings

    return build_settings(eval_run.benchmark, eval_run.settings)


def test_an_evaluation_whose_every_judgment_failed_ends_failed_not_with_a_zero(
    tiny_policy: Path,
) -> None:
    from rl_engine.evaluation.runner import Evaluators

    eval_run = evaluation(tiny_policy, count=2)
    assert eval_run_generate(eval_run.pk, worker="gen")
    assert not eval_run_judge(eval_run.pk, Evaluators(grader=CountingGrader(fail=True)))
    eval_run.refresh_from_db()
    assert eval_run.status == EvalRun.Status.FAILED
    assert eval_run.error.startswith("0 of 2 responses judged: 2 failed; first error: ")
    assert "connection refused" in eval_run.error
    assert eval_run.score is None and eval_run.aggregates["errors"] == 2
    results = EvalItemResult.objects.filter(eval_run=eval_run)
    assert all(r.judged and r.score is None and "connection refused" in r.error for r in results)


def test_a_retried_failed_evaluation_judges_its_failed_items_again_and_finishes(
    tiny_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rl_engine.evaluation.runner import Evaluators
    from webapp.evals.services import jobs
    from webapp.evals.services.eval_runs import eval_run_retry

    sent: list[Any] = []
    monkeypatch.setattr(jobs, "send", lambda name, args, **_: sent.append((str(name), *args)))
    eval_run = evaluation(tiny_policy, count=2)
    assert eval_run_generate(eval_run.pk, worker="gen")
    assert not eval_run_judge(eval_run.pk, Evaluators(grader=CountingGrader(fail=True)))
    eval_run.refresh_from_db()
    assert eval_run.status == EvalRun.Status.FAILED and eval_run.epoch == 2
    responses = sorted(EvalItemResult.objects.filter(eval_run=eval_run).values_list("response"))

    assert eval_run_retry(eval_run=eval_run)  # its task is sent once the retry commits
    eval_run.refresh_from_db()
    assert (eval_run.status, eval_run.epoch, eval_run.error) == ("queued", 3, "")
    assert len(sent) == 1 and sent[0][1] == eval_run.pk
    assert AuditLog.objects.get(action="eval_retry").details["judged_again"] == 2
    assert not eval_run_retry(eval_run=eval_run)  # not failed any more: left alone

    # The worker that takes the retried run: nothing left to generate, both items judged again.
    assert eval_run_generate(eval_run.pk, worker="gen-2")
    grader = CountingGrader()
    assert eval_run_judge(eval_run.pk, Evaluators(grader=grader), worker="judge-2")
    eval_run.refresh_from_db()
    assert eval_run.status == EvalRun.Status.SUCCEEDED and eval_run.epoch == 5
    assert sorted(grader.asked) == [r for (r,) in responses]
    assert eval_run.aggregates["errors"] == 0 and eval_run.score is not None
    # The same responses: generation kept what it had stored.
    assert sorted(EvalItemResult.objects.filter(eval_run=eval_run).values_list("response")) == (
        responses
    )
