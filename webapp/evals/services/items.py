"""What an evaluation run evaluates: its items, built from instructions or long-input
questions, with reference and baseline answers filled in."""

from __future__ import annotations

import json
from typing import Any

from rl_engine.evaluation.longinput import LongInputItem
from rl_engine.evaluation.runner import Criterion, EvalItem
from webapp.evals.models import Benchmark, EvalItemResult, EvalRun, LongInputQuestion
from webapp.studio.models import Instruction, Reference


def instruction_criteria(criteria: Any) -> tuple[Criterion, ...]:
    """An Instruction's criteria as runner criteria: a WritingBench checklist
    (``name``, ``criteria_description``), rubric entries (``name``, ``description``,
    ``negative``), plain strings, or one text."""
    if criteria in (None, "", []):
        return ()
    if isinstance(criteria, str):
        return (Criterion(criteria.strip()),)
    if isinstance(criteria, list):
        found = []
        for entry in criteria:
            if isinstance(entry, str):
                found.append(Criterion(entry.strip()))
            elif isinstance(entry, dict):
                name = str(entry.get("name", "")).strip()
                description = str(
                    entry.get("criteria_description", entry.get("description", ""))
                ).strip()
                found.append(
                    Criterion(name or description, description if name else "",
                              bool(entry.get("negative", False)))
                )  # fmt: skip
        return tuple(c for c in found if c.name)
    return (Criterion(json.dumps(criteria, ensure_ascii=False)),)


def _question_item(question: LongInputQuestion) -> LongInputItem:
    choices = list(question.choices)
    return LongInputItem(
        item_id=str(question.pk),
        context=question.context,
        question=question.question,
        choices=(choices[0], choices[1], choices[2], choices[3]),
        answer=question.answer,
        difficulty=question.difficulty,
        length=question.length,
        domain=question.domain,
    )


def eval_items(eval_run: EvalRun) -> tuple[list[EvalItem], dict[str, Any]]:
    """The run's items, with the system's answers already filled in for a reference tier and
    the baseline for pairwise. Returns the items and ``skipped`` counts with reasons."""
    skipped: dict[str, int] = {}
    if eval_run.long_input_id:
        questions = LongInputQuestion.objects.filter(benchmark_id=eval_run.long_input_id)
        if eval_run.limit:
            questions = questions[: eval_run.limit]
        items = [
            EvalItem(str(q.pk), q.question, domain=q.domain, long_input=_question_item(q))
            for q in questions
        ]
        return items, skipped
    instructions = Instruction.objects.filter(dataset_id=eval_run.dataset_id).order_by("id")
    if eval_run.split:
        instructions = instructions.filter(split=eval_run.split)
    if eval_run.limit:
        instructions = instructions[: eval_run.limit]
    rows = list(instructions)
    ids = [row.pk for row in rows]
    tiers = [t for t in (eval_run.reference_tier, eval_run.baseline_tier) if t is not None]
    references: dict[tuple[int, int], str] = {}
    if tiers:
        for ref in Reference.objects.filter(instruction_id__in=ids, tier__in=tiers):
            references[(ref.instruction_id, ref.tier)] = ref.text  # type: ignore[index]
    baseline_responses: dict[str, str] = {}
    if eval_run.baseline_run_id:
        baseline_responses = dict(
            EvalItemResult.objects.filter(
                eval_run_id=eval_run.baseline_run_id, iteration=0
            ).values_list("item_id", "response")
        )
    items = []
    for row in rows:
        item = EvalItem(
            item_id=str(row.pk),
            prompt=row.prompt,
            domain=row.domain,
            required_words=row.required_words,
            criteria=instruction_criteria(row.criteria),
        )
        if eval_run.reference_tier is not None:
            text = references.get((row.pk, eval_run.reference_tier))
            if text is None:
                skipped["no reference at the system's tier"] = (
                    skipped.get("no reference at the system's tier", 0) + 1
                )
                continue
            item.response = text
        if eval_run.benchmark == Benchmark.PAIRWISE:
            if eval_run.baseline_tier is not None:
                item.baseline = references.get((row.pk, eval_run.baseline_tier))
            else:
                item.baseline = baseline_responses.get(str(row.pk))
            if item.baseline is None:
                skipped["no baseline response"] = skipped.get("no baseline response", 0) + 1
                continue
        items.append(item)
    return items, skipped
