"""A run with a curriculum, for the ops tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from webapp.studio.models import Dataset, Instruction, Reference, Run
from webapp.studio.services.curriculum_store import curriculum_initialize

TOKEN = "t" * 40


@dataclass
class RunWithCurriculum:
    run: Run
    instructions: list[Instruction]

    def sample_id(self, index: int) -> str:
        return str(self.instructions[index].pk)


def make_run(tiers: tuple[int, ...] = (3, 2), name: str = "ops") -> RunWithCurriculum:
    dataset = Dataset.objects.create(name=f"ops-{name}-{Dataset.objects.count()}")
    instructions = []
    for index, count in enumerate(tiers):
        instruction = Instruction.objects.create(
            dataset=dataset, external_id=f"s{index}", prompt=f"Write story {index}."
        )
        for tier in range(count):
            Reference.objects.create(
                instruction=instruction,
                writer=f"w{tier}",
                text=f"reference {index}/{tier}",
                tier=tier,
            )
        instructions.append(instruction)
    run = Run.objects.create(name=name, dataset=dataset, status=Run.Status.RUNNING)
    curriculum_initialize(
        run=run, num_tiers=[(i.pk, c) for i, c in zip(instructions, tiers, strict=True)]
    )
    return RunWithCurriculum(run, instructions)


@pytest.fixture
def run_with_curriculum(db: None) -> RunWithCurriculum:
    return make_run()


@pytest.fixture
def internal_token(settings: pytest.FixtureRequest) -> str:
    settings.WRITING_RL_INTERNAL_API_TOKEN = TOKEN  # type: ignore[attr-defined]
    return TOKEN
