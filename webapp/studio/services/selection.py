"""Margin-aware selection and reference tiers, from the scores in the database."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Prefetch

from rl_engine.selection import SelectionItem, order_references, select_samples
from webapp.studio.models import (
    Dataset,
    Instruction,
    PolicyResponse,
    Reference,
    Selection,
    SelectionEntry,
)


class SelectionError(ValueError):
    """Selection cannot run on these scores; the message says what to score first."""


def selection_items(
    *, dataset: Dataset, policy: str, instruction_ids: Sequence[int] | None = None
) -> list[SelectionItem]:
    """One item per train instruction (of ``instruction_ids`` when given): every reference's
    score (by writer; a writer's best reference when it has several) plus the policy's latest
    scored response."""
    instructions = Instruction.objects.filter(dataset=dataset, split=Instruction.Split.TRAIN)
    if instruction_ids is not None:
        instructions = instructions.filter(pk__in=list(instruction_ids))
    instructions = instructions.order_by("id").prefetch_related(
        Prefetch(
            "references", queryset=Reference.objects.only("instruction_id", "writer", "score")
        ),
        Prefetch(
            "policy_responses",
            queryset=PolicyResponse.objects.filter(policy=policy, score__isnull=False)
            .order_by("-created_at", "-id")
            .only("instruction_id", "score", "created_at"),
            to_attr="scored_responses",
        ),
    )
    items = []
    for instruction in instructions:
        scores: dict[str, float | None] = {}
        for reference in instruction.references.all():
            if reference.writer == policy:
                continue  # the policy's own text is not a competitor
            best = scores.get(reference.writer)
            if reference.score is not None and (best is None or reference.score > best):
                scores[reference.writer] = reference.score
            else:
                scores.setdefault(reference.writer, None)
        responses = instruction.scored_responses
        scores[policy] = responses[0].score if responses else None
        items.append(SelectionItem(str(instruction.pk), scores, policy=policy))
    return items


@transaction.atomic
def selection_create(
    *,
    dataset: Dataset,
    strategy: str,
    k: int | None,
    policy: str,
    seed: int = 0,
    user: Any = None,
    instruction_ids: Sequence[int] | None = None,
) -> Selection:
    """Rank the dataset's train instructions by ``strategy`` and record the top ``k``.

    ``margin`` (learning potential ``max_j s_j - s_policy``) and ``difficulty`` need the
    policy's scored responses (and scored references for margin): instructions without them
    are listed in the error. Every candidate gets an entry (chosen or not), for the histogram.
    """
    if strategy not in Selection.Strategy.values:
        raise SelectionError(f"strategy must be one of {', '.join(Selection.Strategy.values)}")
    items = selection_items(dataset=dataset, policy=policy, instruction_ids=instruction_ids)
    if not items:
        raise SelectionError(f"dataset {dataset.name!r} has no train instructions")
    if strategy in {Selection.Strategy.MARGIN, Selection.Strategy.DIFFICULTY}:
        unscored = [
            item.sample_id
            for item in items
            if item.scores.get(policy) is None
            or (
                strategy == Selection.Strategy.MARGIN
                and not any(v is not None for w, v in item.scores.items() if w != policy)
            )
        ]
        if unscored:
            # Name the instructions by the ids of the dataset's file, not database keys.
            names = dict(
                Instruction.objects.filter(pk__in=[int(pk) for pk in unscored[:5]]).values_list(
                    "pk", "external_id"
                )
            )
            shown = ", ".join(names.get(int(pk), pk) for pk in unscored[:5])
            raise SelectionError(
                f"{len(unscored)} instruction(s) lack the scores {strategy} selection needs "
                f"(e.g. {shown}): score the references and the responses of the policy "
                f"“{policy}” first"
            )
    try:
        results = select_samples(items, k, strategy, seed=seed)
    except ValueError as error:
        raise SelectionError(str(error)) from error
    selection = Selection.objects.create(
        dataset=dataset,
        strategy=strategy,
        k=k,
        policy=policy,
        seed=seed,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    SelectionEntry.objects.bulk_create(
        [
            SelectionEntry(
                selection=selection,
                instruction_id=int(result.sample_id),
                learning_potential=result.potential,
                policy_score=result.policy_score,
                chosen=result.chosen,
            )
            for result in results
        ],
        batch_size=1000,
    )
    return selection


@transaction.atomic
def references_order(
    *,
    instruction: Instruction | None = None,
    dataset: Dataset | None = None,
    instruction_ids: Sequence[int] | None = None,
) -> dict[str, int]:
    """Give scored references tiers by ascending score (0 = weakest; ties by writer).

    References without a score get no tier (they are not used in training until scored).
    Returns counts: instructions ordered, references tiered, references left untiered.
    """
    if (instruction is None) == (dataset is None):
        raise ValueError("give exactly one of instruction and dataset")
    references = Reference.objects.select_for_update().order_by("instruction_id", "id")
    if instruction is not None:
        references = references.filter(instruction=instruction)
    else:
        references = references.filter(instruction__dataset=dataset)
    if instruction_ids is not None:
        references = references.filter(instruction_id__in=list(instruction_ids))
    by_instruction: dict[int, list[Reference]] = defaultdict(list)
    for reference in references:
        by_instruction[reference.instruction_id].append(reference)
    changed: list[Reference] = []
    untiered = 0
    for group in by_instruction.values():
        scored = {str(r.pk): r.score for r in group if r.score is not None}
        # Keys by reference id (a writer may have several); ties are broken by writer name.
        writers = {str(r.pk): r.writer for r in group}
        order = sorted(
            order_references(scored),
            key=lambda pk: (scored[pk], writers[pk], int(pk)),
        )
        tiers = {pk: tier for tier, pk in enumerate(order)}
        for reference in group:
            tier = tiers.get(str(reference.pk))
            untiered += tier is None
            if reference.tier != tier:
                reference.tier = tier
                changed.append(reference)
    # Clear first, then set: the (instruction, tier) uniqueness holds after each statement.
    Reference.objects.filter(pk__in=[r.pk for r in changed]).update(tier=None)
    Reference.objects.bulk_update(
        [r for r in changed if r.tier is not None], ["tier"], batch_size=500
    )
    return {
        "instructions": len(by_instruction),
        "tiered": sum(len(g) for g in by_instruction.values()) - untiered,
        "untiered": untiered,
    }
