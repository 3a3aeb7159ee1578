"""Load the demo dataset and give it references: SmolLM2 at three settings, tiered by the judge.

Idempotent: what exists is kept, only missing references are generated, tiers are re-derived.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import defaultdict
from typing import Any

from django.core.management.base import BaseCommand

from rl_engine.judging import HeuristicJudge, PairRequest
from rl_engine.models import load_policy
from rl_engine.outcomes import Outcome
from webapp.studio.demo import DATASET_NAME, INSTRUCTIONS, WRITERS
from webapp.studio.models import Dataset, Instruction, Reference
from webapp.studio.services.datasets import dataset_import
from webapp.studio.services.pipeline import references_generate
from webapp.studio.services.selection import references_order


def judge_scores(instructions: list[Instruction]) -> int:
    """Score each reference by its round-robin record against the others (HeuristicJudge,
    both orders): 1 + 9 x (wins + ties / 2) / games. Returns the number of comparisons."""
    judge = HeuristicJudge()
    games = 0
    for instruction in instructions:
        references = list(instruction.references.all())
        points: dict[int, float] = defaultdict(float)
        played: dict[int, int] = defaultdict(int)
        pairs = list(itertools.permutations(references, 2))
        verdicts = judge.compare_sync(
            [PairRequest(instruction.prompt, a.text, b.text) for a, b in pairs]
        )
        for (a, b), judgment in zip(pairs, verdicts, strict=True):
            played[a.pk] += 1
            played[b.pk] += 1
            # Each side's outcome (a was shown first); an INVALID game earns nobody points.
            for reference, position in ((a, "first"), (b, "second")):
                points[reference.pk] += (
                    Outcome.from_verdict(judgment.verdict, position).reward or 0.0
                )
        games += len(pairs)
        for reference in references:
            share = points[reference.pk] / played[reference.pk] if played[reference.pk] else 0.5
            reference.score = round(1 + 9 * share, 3)
        Reference.objects.bulk_update(references, ["score"])
    return games


class Command(BaseCommand):
    help = "Load the demo dataset and generate its tiered references with SmolLM2 (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        if os.getloadavg()[0] >= (os.cpu_count() or 1):
            # On a busy machine torch's worker threads wait for each other far more than they
            # compute (measured 3x slower generation at load 10 on 2 cores); one thread wins.
            import torch

            torch.set_num_threads(1)
        dataset = Dataset.objects.filter(name=DATASET_NAME).first()
        if dataset is None:
            dataset = dataset_import(
                name=DATASET_NAME,
                path=INSTRUCTIONS,
                fmt="jsonl",
                description="Twelve short writing tasks for the demo.",
            )
            self.stdout.write(f"Loaded {dataset.instructions.count()} demo instructions")
        instructions = list(dataset.instructions.order_by("id"))
        models: dict[str, Any] = {}  # one SmolLM2 in memory for all three writers
        for writer in WRITERS:
            missing = [
                i.pk
                for i in instructions
                if not i.references.filter(writer=writer["name"]).exists()
            ]
            if not missing:
                continue
            self.stdout.write(f"Writing {len(missing)} references with {writer['name']}...")
            if writer["model"] not in models:
                models[writer["model"]] = load_policy(writer["model"], device="cpu")
            result = references_generate(
                dataset=dataset,
                writers=[writer],
                params={"instruction_ids": missing},
                models=models,
            )
            if result["failed"]:
                self.stdout.write(f"  {result['failed']} generation(s) failed: {result['errors']}")
        games = judge_scores(instructions)
        counts = references_order(dataset=dataset)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo dataset {dataset.name!r} ready: {counts['tiered']} references in tiers over "
                f"{counts['instructions']} instructions ({games} judge comparisons, "
                f"{time.monotonic() - started:.0f} s)"
            )
        )
