"""Small builders of studio data for the view tests (bulk inserts, no ORM loops per row)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from webapp.studio.models import (
    CurriculumState,
    CurriculumTransition,
    Dataset,
    Instruction,
    Judgment,
    Reference,
    Run,
    Selection,
    SelectionEntry,
    StepMetric,
)


def make_dataset(name: str = "essays", *, instructions: int = 3, references: int = 3) -> Dataset:
    dataset = Dataset.objects.create(name=name, source_format="jsonl")
    rows = Instruction.objects.bulk_create(
        Instruction(
            dataset=dataset,
            external_id=f"{name}-{i}",
            prompt=f"Write essay number {i} about tides.",
            required_words=200 + i,
            domain="science",
        )
        for i in range(instructions)
    )
    Reference.objects.bulk_create(
        Reference(
            instruction=instruction,
            writer=f"writer-{tier}",
            text=f"Reference {tier} for {instruction.external_id}: " + "tide " * (10 + tier),
            score=float(tier),
            tier=tier,
        )
        for instruction in rows
        for tier in range(references)
    )
    return dataset


def make_run(
    dataset: Dataset,
    *,
    name: str = "run-1",
    status: str = Run.Status.RUNNING,
    steps: int = 3,
    owner: User | None = None,
    rollouts: int = 2,
) -> Run:
    """A run over every instruction of ``dataset`` with ``steps`` steps of metrics, judgments
    and, for the first instruction, one tier advance per step (capped at the top tier)."""
    instructions = list(dataset.instructions.order_by("id"))
    num_tiers = max(1, dataset.instructions.first().references.count()) if instructions else 1
    run = Run.objects.create(
        name=name,
        dataset=dataset,
        status=status,
        current_step=steps,
        total_steps=max(steps, 10),
        progress=steps / max(steps, 10),
        owner=owner,
        config={"algorithm": "grpo", "max_steps": max(steps, 10)},
    )
    climbed = min(steps, num_tiers - 1)
    CurriculumState.objects.bulk_create(
        CurriculumState(
            run=run,
            instruction=instruction,
            tier=climbed if index == 0 else 0,
            num_tiers=num_tiers,
            attempts=steps * rollouts,
            wins=climbed if index == 0 else 0,
            losses=steps * rollouts - (climbed if index == 0 else 0),
            last_step=steps,
        )
        for index, instruction in enumerate(instructions)
    )
    if instructions:
        CurriculumTransition.objects.bulk_create(
            CurriculumTransition(
                run=run,
                instruction=instructions[0],
                step=step + 1,
                from_tier=step,
                to_tier=step + 1,
            )
            for step in range(climbed)
        )
    StepMetric.objects.bulk_create(
        StepMetric(run=run, step=step, metrics=step_metrics(step, len(instructions), num_tiers))
        for step in range(1, steps + 1)
    )
    Judgment.objects.bulk_create(
        Judgment(
            run=run,
            instruction=instruction,
            step=step,
            rollout=f"rollout {k} of step {step}",
            reference_tier=0,
            verdict=Judgment.Verdict.WIN if k == 0 else Judgment.Verdict.LOSS,
            reward=1.0 if k == 0 else -1.0,
            rationale=f"Rationale for step {step} rollout {k}.",
            judge="heuristic",
            latency_s=0.01,
        )
        for instruction in instructions
        for step in range(1, steps + 1)
        for k in range(rollouts)
    )
    return run


def step_metrics(step: int, samples: int, num_tiers: int) -> dict[str, Any]:
    histogram = [0] * num_tiers
    histogram[0] = samples
    return {
        "step": step,
        "reward_mean": 0.1 * step,
        "pairwise_reward_mean": 0.05 * step,
        "win_rate": 0.5,
        "tie_rate": 0.1,
        "loss_rate": 0.3,
        "invalid_rate": 0.1,
        "tier_histogram": histogram,
        "mastered": 0,
        "mean_completion_words": 100.0 + step,
        "judge_latency_s": 0.2,
    }


def make_selection(dataset: Dataset, *, chosen: int = 1) -> Selection:
    selection = Selection.objects.create(
        dataset=dataset, strategy=Selection.Strategy.MARGIN, k=chosen, policy="tiny"
    )
    SelectionEntry.objects.bulk_create(
        SelectionEntry(
            selection=selection,
            instruction=instruction,
            learning_potential=0.1 * index,
            policy_score=5.0,
            chosen=index < chosen,
        )
        for index, instruction in enumerate(dataset.instructions.order_by("id"))
    )
    return selection
