""" "Prepare references": one action that creates the chained pipeline jobs which make a
dataset ready to train on — write → grade → order tiers, optionally → select — as one group.

Each job waits for the one before it (``job_create(depends_on=...)``); the first N
instructions (by id, in the chosen split) are resolved once, here, and every step works on
those only. Selection needs the policy's graded answers (margin and difficulty): the chain
then also answers with the policy, beside the writing, and selection waits for both.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from rl_engine.writers import WriterSpec
from webapp.studio.models import Dataset, Instruction, PipelineJob, Selection
from webapp.studio.services.pipeline import job_create

__all__ = ["PrepareError", "references_prepare"]

# Strategies that compare against the policy's own graded answers.
NEEDS_POLICY = (Selection.Strategy.MARGIN, Selection.Strategy.DIFFICULTY)


class PrepareError(ValueError):
    """The chain cannot be prepared as asked; the message says why (nothing was created)."""


def _first_instructions(dataset: Dataset, split: str, limit: int | None) -> list[int]:
    query = Instruction.objects.filter(dataset=dataset)
    if split:
        query = query.filter(split=split)
    ids = query.order_by("id").values_list("pk", flat=True)
    return list(ids[:limit] if limit else ids)


def references_prepare(
    *,
    dataset: Dataset,
    writer: dict[str, Any] | WriterSpec,
    scorer: dict[str, Any] | None = None,
    split: str = "",
    limit: int | None = None,
    strategy: str = "",
    k: int | None = None,
    policy: str = "",
    seed: int = 0,
    max_new_tokens: int = 256,
    temperature: float = 0.7,
    user: Any = None,
    enqueue: bool = True,
) -> list[PipelineJob]:
    """Create the chain (in one transaction; the first jobs are sent on commit) and return
    its jobs in order. ``scorer`` grades references and the policy's answers (None: the
    offline heuristic); ``strategy`` (empty: no selection) with ``k`` and ``policy`` adds the
    selection step. Raises :class:`PrepareError` on bad input, creating nothing."""
    writer_dict = writer.to_dict() if isinstance(writer, WriterSpec) else dict(writer)
    if split and split not in Instruction.Split.values:
        raise PrepareError(f"split must be one of {', '.join(Instruction.Split.values)}")
    if limit is not None and limit < 1:
        raise PrepareError("the first-N limit must be at least 1")
    if strategy and strategy not in Selection.Strategy.values:
        raise PrepareError(f"strategy must be one of {', '.join(Selection.Strategy.values)}")
    if k is not None and k < 1:
        raise PrepareError("k must be at least 1")
    if strategy and split == Instruction.Split.TEST:
        raise PrepareError("selection picks train instructions: choose the train split")
    if strategy in NEEDS_POLICY and not policy:
        raise PrepareError(f"{strategy} selection needs the policy whose answers it compares")
    ids = _first_instructions(dataset, split, limit)
    if not ids:
        where = f" in the {split} split" if split else ""
        raise PrepareError(f"dataset {dataset.name!r} has no instructions{where}")
    train_ids = ids
    if strategy:
        train_ids = list(
            Instruction.objects.filter(pk__in=ids, split=Instruction.Split.TRAIN)
            .order_by("id")
            .values_list("pk", flat=True)
        )
        if not train_ids:
            raise PrepareError("selection picks train instructions: none among those chosen")
    scope = f"first {len(ids)}" if limit else f"all {len(ids)}"
    label = f"Prepare references: {scope} {f'{split} ' if split else ''}instruction(s)"
    if strategy:
        label += f", then select {strategy}" + (f" k={k}" if k else "")
    group = uuid.uuid4()
    common: dict[str, Any] = {"dataset": dataset, "user": user, "enqueue": enqueue}
    common |= {"group": group, "group_label": label}
    scope_params: dict[str, Any] = {"instruction_ids": ids, "limit": limit}
    with transaction.atomic():
        write = job_create(
            kind=PipelineJob.Kind.GENERATE_REFERENCES,
            params={
                "writers": [writer_dict],
                **scope_params,
                **({"split": split} if split else {}),
            },
            **common,
        )
        grade = job_create(
            kind=PipelineJob.Kind.SCORE_REFERENCES,
            params={"scorer": scorer, "rescore": False, **scope_params},
            depends_on=[write],
            **common,
        )
        order = job_create(
            kind=PipelineJob.Kind.ORDER_TIERS, params=scope_params, depends_on=[grade], **common
        )
        jobs = [write, grade, order]
        if strategy:
            inputs: Sequence[PipelineJob] = [order]
            if strategy in NEEDS_POLICY:
                answer = job_create(
                    kind=PipelineJob.Kind.POLICY_RESPONSES,
                    params={
                        "policy": policy,
                        "scorer": scorer,
                        "max_new_tokens": max_new_tokens,
                        "temperature": temperature,
                        "instruction_ids": train_ids,
                        "limit": limit,
                    },
                    **common,
                )
                jobs.append(answer)
                inputs = [order, answer]
            select = job_create(
                kind=PipelineJob.Kind.SELECT,
                params={
                    "strategy": strategy,
                    "k": k,
                    "policy": policy or "",
                    "seed": seed,
                    "instruction_ids": train_ids,
                    "limit": limit,
                },
                depends_on=inputs,
                **common,
            )
            jobs.append(select)
    return jobs
