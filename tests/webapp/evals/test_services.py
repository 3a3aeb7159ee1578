"""Evaluation services: validation, the items of a run, and both phases in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rl_engine.evaluation.grading import HeuristicGrader
from rl_engine.evaluation.runner import Evaluators
from rl_engine.judging import HeuristicJudge, OpenAIScorer
from rl_engine.testing import ChatCall, FakeOpenAIServer, transport_to
from tests.webapp.evals.factories import CHECKLIST, make_dataset, make_instruction
from webapp.evals.models import EvalItemResult, EvalRun
from webapp.evals.selectors import eval_token_totals
from webapp.evals.services.config import EvalConfigError
from webapp.evals.services.eval_runs import eval_run_create
from webapp.evals.services.execution import eval_run_execute, eval_run_generate, eval_run_judge
from webapp.evals.services.items import eval_items, instruction_criteria
from webapp.studio.models import Instruction

# Evaluations report progress from a worker thread (its own database connection), as they do
# in a Celery task: the test's data must be committed, or SQLite's write lock held by the
# test's open transaction blocks that thread.
pytestmark = pytest.mark.django_db(transaction=True)


def test_it_evaluates_a_base_model_on_longbench_write_end_to_end(tiny_policy: Path) -> None:
    dataset = make_dataset()
    make_instruction(dataset, prompt="Write 100 words on tea.", required_words=100, domain="Food")
    make_instruction(
        dataset, prompt="Write 900 words on rain.", required_words=900, domain="Nature"
    )
    make_instruction(dataset, prompt="Training only.", split=Instruction.Split.TRAIN)
    eval_run = eval_run_create(
        benchmark="longbench_write", system_kind="base_model", base_model=str(tiny_policy),
        dataset=dataset, split="eval", settings={"max_new_tokens": 8, "batch_size": 2},
        judge={"kind": "heuristic"}, enqueue=False,
    )  # fmt: skip
    eval_run = eval_run_execute(eval_run.pk)
    assert eval_run.status == EvalRun.Status.SUCCEEDED, eval_run.error
    results = list(eval_run.results.order_by("id"))
    assert [r.required_words for r in results] == [100, 900]
    assert all(r.judged and r.response for r in results)
    assert {r.instruction.prompt for r in results} == {
        "Write 100 words on tea.",
        "Write 900 words on rain.",
    }
    for result in results:
        assert result.details["length_score"] is not None
        assert set(result.details["dimensions"]) >= {"relevance", "reading experience"}
    aggregates = eval_run.aggregates
    assert aggregates["items"] == 2
    assert aggregates["S_bar"] == pytest.approx((aggregates["S_l"] + aggregates["S_q"]) / 2)
    assert set(aggregates["domain_scores"]) == {"Food", "Nature"}
    assert eval_run.generation_s > 0 and eval_run.judging_s >= 0
    assert eval_run.progress == 1.0 and eval_run.finished_at is not None


def test_it_does_nothing_for_a_redelivered_generation(tiny_policy: Path) -> None:
    dataset = make_dataset()
    make_instruction(dataset, required_words=50)
    eval_run = eval_run_create(
        benchmark="longbench_write", system_kind="base_model", base_model=str(tiny_policy),
        dataset=dataset, settings={"max_new_tokens": 4}, judge={"kind": "heuristic"},
        enqueue=False,
    )  # fmt: skip
    assert eval_run_generate(eval_run.pk) is True
    assert eval_run_generate(eval_run.pk) is False  # claimed already
    assert EvalItemResult.objects.filter(eval_run=eval_run).count() == 1
    assert eval_run_judge(eval_run.pk) is True
    assert eval_run_judge(eval_run.pk) is False  # judged already


def test_it_scores_writingbench_criteria_with_a_judge_endpoint_for_a_reference_tier() -> None:
    dataset = make_dataset()
    make_instruction(
        dataset, prompt="Write a memo.", criteria=CHECKLIST, domain="Business",
        references=["weak memo", "strong memo"],
    )  # fmt: skip

    def policy(call: ChatCall) -> str:
        grade = 9 if "strong memo" in call.user else 3
        return json.dumps({"score": grade - ("Focus" in call.user), "reason": "fake"})

    eval_run = eval_run_create(
        benchmark="writingbench", system_kind="reference_tier", reference_tier=1,
        dataset=dataset, judge={"kind": "heuristic"}, enqueue=False,
    )  # fmt: skip
    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        evaluators = Evaluators(scorer=OpenAIScorer(transport_to(server.base_url)))
        assert eval_run_generate(eval_run.pk)
        assert eval_run_judge(eval_run.pk, evaluators)
        assert server.stats().requests == 2  # one call per criterion
    eval_run.refresh_from_db()
    (result,) = eval_run.results.all()
    assert result.response == "strong memo"  # the tier's text, not generated
    assert [c["score"] for c in result.details["criteria"]] == [9, 8]
    assert result.score == pytest.approx(85.0)
    assert eval_run.aggregates["score"] == pytest.approx(85.0)
    # What judging cost is stored on the result: two calls, the tokens the endpoint reported.
    assert result.judge_attempts == 2
    assert result.judge_prompt_tokens > 20 and result.judge_completion_tokens > 2
    spent = eval_token_totals(eval_run)
    assert (spent.prompt_tokens, spent.attempts) == (result.judge_prompt_tokens, 2)
    assert spent.cost is None  # the heuristic endpoint declares no price


def test_it_plays_a_reference_tier_against_another_tier_in_both_orders() -> None:
    dataset = make_dataset()
    for n in range(3):
        make_instruction(
            dataset, prompt=f"Write about the sea {n}.",
            references=["sea " * 40, f"The sea {n} is wide, grey and restless tonight."],
        )  # fmt: skip
    make_instruction(dataset, references=["only one tier"])  # skipped: no tier 1
    eval_run = eval_run_create(
        benchmark="pairwise", system_kind="reference_tier", reference_tier=1, baseline_tier=0,
        dataset=dataset, judge={"kind": "heuristic"}, enqueue=False,
    )  # fmt: skip
    eval_run = eval_run_execute(eval_run.pk, Evaluators(judge=HeuristicJudge()))
    assert eval_run.status == EvalRun.Status.SUCCEEDED, eval_run.error
    assert eval_run.results.count() == 3
    assert eval_run.aggregates["skipped"] == {"no reference at the system's tier": 1}
    outcomes = [r.details["outcome"] for r in eval_run.results.all()]
    agg = eval_run.aggregates
    assert agg["wins"] == outcomes.count("win") and agg["losses"] == outcomes.count("loss")
    assert agg["score"] == pytest.approx(100 * (agg["wins"] + agg["ties"] / 2) / 3)


def test_it_marks_the_run_failed_with_the_reason_and_keeps_nothing_half_done() -> None:
    dataset = make_dataset()
    make_instruction(dataset, required_words=10)
    eval_run = eval_run_create(
        benchmark="longbench_write", system_kind="base_model", base_model="/no/such/model",
        dataset=dataset, judge={"kind": "heuristic"}, enqueue=False,
    )  # fmt: skip
    eval_run = eval_run_execute(eval_run.pk)
    assert eval_run.status == EvalRun.Status.FAILED
    assert "/no/such/model" in eval_run.error
    assert eval_run.results.count() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"benchmark": "nope"}, "benchmark must be one of"),
        ({"system_kind": "checkpoint"}, "choose the checkpoint"),
        ({"system_kind": "reference_tier"}, "needs a tier"),
        ({"benchmark": "pairwise"}, "exactly one baseline"),
        ({"benchmark": "longbench_v2"}, "imported benchmark file"),
        ({"split": "test"}, "no instruction in split 'test'"),
        ({"settings": {"max_new_tokens": 0}}, "max_new_tokens must be an integer >= 1"),
        ({"settings": {"beams": 3}}, "unknown evaluation setting"),
        ({"judge": {"endpoint": "local"}}, "needs a model"),
        ({"judge": {"endpoint": "elsewhere"}}, "unknown endpoint 'elsewhere'"),
    ],
)
def test_it_refuses_an_invalid_evaluation_and_creates_nothing(
    kwargs: dict[str, object], message: str
) -> None:
    dataset = make_dataset()
    make_instruction(dataset, required_words=10)
    arguments: dict[str, object] = {
        "benchmark": "longbench_write", "system_kind": "base_model", "dataset": dataset,
        "split": "eval", "judge": {"kind": "heuristic"}, "enqueue": False,
    }  # fmt: skip
    arguments.update(kwargs)
    with pytest.raises(EvalConfigError, match=message):
        eval_run_create(**arguments)  # type: ignore[arg-type]
    assert EvalRun.objects.count() == 0


def test_it_reads_instruction_criteria_in_every_shape() -> None:
    assert [c.name for c in instruction_criteria(CHECKLIST)] == ["Tone", "Focus"]
    assert instruction_criteria(CHECKLIST)[0].description == "Formal and polite."
    rubric = instruction_criteria([{"name": "Purple prose", "negative": True}, "Imagery"])
    assert [(c.name, c.negative) for c in rubric] == [("Purple prose", True), ("Imagery", False)]
    assert [c.name for c in instruction_criteria("Be brief.")] == ["Be brief."]
    assert instruction_criteria(None) == ()


def test_it_uses_a_baseline_evaluation_s_responses_for_pairwise(tiny_policy: Path) -> None:
    dataset = make_dataset()
    make_instruction(dataset, prompt="Write a haiku.", references=["Old pond, a frog jumps."])
    baseline = eval_run_execute(
        eval_run_create(
            benchmark="creative", system_kind="reference_tier", reference_tier=0,
            dataset=dataset, judge={"kind": "heuristic"}, enqueue=False,
        ).pk,
        Evaluators(grader=HeuristicGrader()),
    )  # fmt: skip
    assert baseline.status == EvalRun.Status.SUCCEEDED, baseline.error
    eval_run = eval_run_create(
        benchmark="pairwise", system_kind="base_model", base_model=str(tiny_policy),
        dataset=dataset, baseline_run=baseline, settings={"max_new_tokens": 6},
        judge={"kind": "heuristic"}, enqueue=False,
    )  # fmt: skip
    (item,), _skipped = eval_items(eval_run)
    assert item.baseline == "Old pond, a frog jumps."
    eval_run = eval_run_execute(eval_run.pk)
    assert eval_run.status == EvalRun.Status.SUCCEEDED, eval_run.error
    (result,) = eval_run.results.all()
    assert result.details["outcome"] in {"win", "tie", "loss"}
    assert result.details["baseline_words"] == 5
