"""Selection, tier ordering and the pipeline steps (writers on a fake endpoint, tiny policy)."""

from __future__ import annotations

import json

import pytest

from rl_engine.models import tiny_model
from rl_engine.testing.openai_server import ChatCall, FakeOpenAIServer, Fault
from tests.webapp.studio.factories import make_dataset, make_instruction
from webapp.studio.models import PipelineJob, PolicyResponse, Reference
from webapp.studio.services.pipeline import (
    job_claim,
    job_create,
    job_execute,
    policy_responses_generate,
    references_generate,
    references_score,
)
from webapp.studio.services.selection import SelectionError, references_order, selection_create

pytestmark = pytest.mark.django_db


def scored_instruction(dataset, policy_score: float | None, reference_scores: dict[str, float]):
    instruction = make_instruction(dataset)
    for writer, score in reference_scores.items():
        Reference.objects.create(instruction=instruction, writer=writer, text=writer, score=score)
    if policy_score is not None:
        PolicyResponse.objects.create(
            instruction=instruction, policy="pi", text="mine", score=policy_score
        )
    return instruction


def test_it_selects_the_top_k_by_learning_potential() -> None:
    dataset = make_dataset()
    big = scored_instruction(dataset, 2, {"gpt": 9, "qwen": 6})  # potential 7
    small = scored_instruction(dataset, 5, {"gpt": 6})  # potential 1
    middle = scored_instruction(dataset, 4, {"gpt": 5, "qwen": 8})  # potential 4
    selection = selection_create(dataset=dataset, strategy="margin", k=2, policy="pi")
    entries = {e.instruction_id: e for e in selection.entries.all()}
    assert {i for i, e in entries.items() if e.chosen} == {big.pk, middle.pk}
    assert (entries[big.pk].learning_potential, entries[small.pk].learning_potential) == (7, 1)
    assert entries[middle.pk].policy_score == 4
    hardest = selection_create(dataset=dataset, strategy="difficulty", k=1, policy="pi")
    assert list(hardest.entries.filter(chosen=True).values_list("instruction_id", flat=True)) == [
        big.pk
    ]


def test_it_names_what_to_score_before_margin_selection() -> None:
    dataset = make_dataset()
    scored_instruction(dataset, 3, {"gpt": 9})
    unscored = scored_instruction(dataset, None, {"gpt": 9})
    # Named by the dataset's own id, not the database key.
    with pytest.raises(SelectionError, match=f"e.g. {unscored.external_id}.*score the references"):
        selection_create(dataset=dataset, strategy="margin", k=1, policy="pi")
    full = selection_create(dataset=dataset, strategy="full", k=None, policy="pi")
    assert full.entries.filter(chosen=True).count() == 2


def test_it_orders_tiers_by_ascending_score_and_leaves_unscored_out() -> None:
    dataset = make_dataset()
    instruction = scored_instruction(dataset, None, {"strong": 9, "weak": 2, "mid": 5})
    Reference.objects.create(instruction=instruction, writer="unscored", text="?")
    # Existing tiers in another order must not collide with the new ones.
    for tier, writer in enumerate(["strong", "mid", "weak"]):
        Reference.objects.filter(instruction=instruction, writer=writer).update(tier=tier)
    counts = references_order(dataset=dataset)
    tiers = dict(instruction.references.values_list("writer", "tier"))
    assert tiers == {"weak": 0, "mid": 1, "strong": 2, "unscored": None}
    assert counts == {"instructions": 1, "tiered": 3, "untiered": 1}
    assert references_order(instruction=instruction) == counts


def plan_policy(call: ChatCall) -> str | Fault:
    if "break down" in call.user:
        return "Section 1 - Main point: a - Word count: 600 words\n" * 2
    return "Words " * 20


def test_it_generates_references_with_plan_then_write_and_counts_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dataset = make_dataset()
    long = make_instruction(dataset, prompt="Write a 1200-word essay on bridges.")
    short = make_instruction(dataset, prompt="A haiku on snow.")
    with FakeOpenAIServer(latency_s=0.0, policy=plan_policy) as server:
        monkeypatch.setenv(
            "WRITING_RL_ENDPOINTS", json.dumps([{"name": "fake", "base_url": server.base_url}])
        )
        writer = {"name": "gpt", "endpoint": "fake", "model": "m",
                  "plan_then_write": True, "plan_min_words": 1000, "max_retries": 0}  # fmt: skip
        seen: list[float] = []
        result = references_generate(
            dataset=dataset, writers=[writer], progress=lambda f, m: seen.append(f) or True
        )
    assert result == {"written": 2, "failed": 0, "errors": []}
    essay = Reference.objects.get(instruction=long)
    assert essay.source == "generated" and essay.tier is None
    assert essay.metadata["calls"] == 3 and len(essay.metadata["plan"]) == 2
    assert Reference.objects.get(instruction=short).metadata["plan"] is None
    assert seen[-1] == 1.0
    with FakeOpenAIServer(latency_s=0.0, policy=lambda c: Fault.SERVER_ERROR) as broken:
        monkeypatch.setenv(
            "WRITING_RL_ENDPOINTS", json.dumps([{"name": "fake", "base_url": broken.base_url}])
        )
        writer.update(name="broken")
        result = references_generate(dataset=dataset, writers=[writer])
    assert (result["written"], result["failed"]) == (0, 2) and "HTTP 500" in result["errors"][0]
    assert not Reference.objects.filter(writer="broken").exists()


def test_a_reference_written_without_a_readable_outline_is_flagged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dataset = make_dataset()
    long = make_instruction(dataset, prompt="Write a 1200-word essay on bridges.")

    def policy(call: ChatCall) -> str:
        return "I will just write it." if "break down" in call.user else "Words " * 20

    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        monkeypatch.setenv(
            "WRITING_RL_ENDPOINTS", json.dumps([{"name": "fake", "base_url": server.base_url}])
        )
        writer = {"name": "gpt", "endpoint": "fake", "model": "m", "plan_then_write": True,
                  "plan_min_words": 1000, "section_words": 600, "seed": 3}  # fmt: skip
        result = references_generate(dataset=dataset, writers=[writer])
        bodies = list(server.bodies)
    assert result == {"written": 1, "failed": 0, "errors": [], "plan_fallbacks": 1}
    essay = Reference.objects.get(instruction=long)
    assert essay.metadata["plan_fallback"] is True
    assert [p["words"] for p in essay.metadata["plan"]] == [600, 600]
    assert {body["seed"] for body in bodies} == {3}  # the writer's seed reaches the endpoint


def test_it_scores_references_and_policy_responses_with_the_heuristic() -> None:
    dataset = make_dataset()
    instruction = make_instruction(dataset, prompt="Write 20 words about tea.")
    Reference.objects.create(
        instruction=instruction,
        writer="good",
        text=" ".join(["tea"] + [f"w{i}" for i in range(19)]),
    )
    Reference.objects.create(instruction=instruction, writer="loop", text="tea tea tea tea " * 20)
    assert references_score(dataset=dataset)["scored"] == 2
    scores = dict(instruction.references.values_list("writer", "score"))
    assert 1 <= scores["loop"] < scores["good"] <= 10
    model = tiny_model(seed=0)
    result = policy_responses_generate(
        dataset=dataset, policy="tiny", max_new_tokens=4, model=model
    )
    assert result == {"responses": 1, "graded": 1, "failed": 0, "errors": []}
    response = PolicyResponse.objects.get(instruction=instruction)
    assert response.policy == "tiny" and response.score is not None


def test_it_runs_a_job_with_progress_and_claims_it_once(django_capture_on_commit_callbacks) -> None:
    dataset = make_dataset()
    scored_instruction(dataset, None, {"b": 2, "a": 1})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = job_create(kind="order_tiers", dataset=dataset, params={})
    assert len(callbacks) == 1
    assert job_claim(job.pk) and not job_claim(job.pk)
    assert job_execute(job) == {"instructions": 1, "tiered": 2, "untiered": 0}
    assert PipelineJob.objects.get(pk=job.pk).status == "running"
