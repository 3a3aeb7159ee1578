"""Small builders for studio tests (plain functions, no factory library)."""

from __future__ import annotations

import itertools

from webapp.studio.models import CurriculumState, Dataset, Instruction, Reference, Run

_counter = itertools.count()


def make_dataset(name: str | None = None) -> Dataset:
    return Dataset.objects.create(name=name or f"dataset-{next(_counter)}")


def make_instruction(
    dataset: Dataset, external_id: str | None = None, references: int = 0, **fields: object
) -> Instruction:
    instruction = Instruction.objects.create(
        dataset=dataset,
        external_id=external_id or f"i{next(_counter)}",
        prompt=fields.pop("prompt", "Write a short story about a lighthouse keeper."),
        **fields,
    )
    for tier in range(references):
        Reference.objects.create(
            instruction=instruction,
            writer=f"writer-{tier}",
            text=f"Reference {tier}: the keeper climbed the stairs " + "and watched " * tier,
            score=float(tier),
            tier=tier,
        )
    return instruction


def make_run(dataset: Dataset | None = None, **fields: object) -> Run:
    return Run.objects.create(
        name=fields.pop("name", f"run-{next(_counter)}"),
        dataset=dataset or make_dataset(),
        **fields,
    )


def make_curriculum(run: Run, num_tiers: dict[str, int]) -> dict[str, str]:
    """Instructions and curriculum rows for ``num_tiers`` (label -> tiers); returns label ->
    engine sample id (the instruction's pk as text)."""
    ids = {}
    for label, count in num_tiers.items():
        instruction = make_instruction(run.dataset, external_id=f"{label}-{next(_counter)}")
        CurriculumState.objects.create(run=run, instruction=instruction, num_tiers=count)
        ids[label] = str(instruction.pk)
    return ids
