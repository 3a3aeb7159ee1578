"""Builders for evaluation tests: datasets with eval instructions, references, finished runs."""

from __future__ import annotations

import itertools
from typing import Any

from webapp.evals.models import EvalItemResult, EvalRun
from webapp.studio.models import Checkpoint, Dataset, Instruction, Reference, Run

_counter = itertools.count()

CHECKLIST = [
    {"name": "Tone", "criteria_description": "Formal and polite.", "1-2": "rude", "9-10": "apt"},
    {"name": "Focus", "criteria_description": "Stays on the topic."},
]


def make_dataset(name: str | None = None) -> Dataset:
    return Dataset.objects.create(name=name or f"eval-dataset-{next(_counter)}")


def make_instruction(
    dataset: Dataset,
    *,
    prompt: str = "Write about the sea.",
    split: str = Instruction.Split.EVAL,
    references: list[str] | None = None,
    **fields: Any,
) -> Instruction:
    instruction = Instruction.objects.create(
        dataset=dataset,
        external_id=fields.pop("external_id", f"i{next(_counter)}"),
        prompt=prompt,
        split=split,
        **fields,
    )
    for tier, text in enumerate(references or []):
        Reference.objects.create(instruction=instruction, writer=f"w{tier}", text=text, tier=tier)
    return instruction


def make_succeeded_eval(benchmark: str, aggregates: dict[str, Any], **fields: Any) -> EvalRun:
    """A finished evaluation with the given aggregates (for views and selectors)."""
    return EvalRun.objects.create(
        name=fields.pop("name", f"{benchmark}-{next(_counter)}"),
        benchmark=benchmark,
        system_kind=fields.pop("system_kind", EvalRun.SystemKind.BASE_MODEL),
        base_model=fields.pop("base_model", "tiny"),
        status=EvalRun.Status.SUCCEEDED,
        aggregates=aggregates,
        progress=1.0,
        **fields,
    )


def add_results(eval_run: EvalRun, rows: list[tuple[int | None, int, float | None, str]]) -> None:
    """Item results (required words, produced words, score, domain)."""
    for index, (required, produced, score, domain) in enumerate(rows):
        EvalItemResult.objects.create(
            eval_run=eval_run, item_id=str(index), required_words=required,
            produced_words=produced, score=score, domain=domain, judged=True,
            response=f"response {index}",
        )  # fmt: skip


def make_checkpoint(run: Run, step: int, path: str = "/nonexistent") -> Checkpoint:
    return Checkpoint.objects.create(run=run, step=step, path=path)


def make_run(dataset: Dataset, **fields: Any) -> Run:
    return Run.objects.create(name=fields.pop("name", f"run-{next(_counter)}"), dataset=dataset,
                              **fields)  # fmt: skip
