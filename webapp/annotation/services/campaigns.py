"""Campaigns: the systems a researcher compares, their outputs, and the items built from them."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from webapp.annotation.models import Campaign, Item, System, SystemOutput
from webapp.annotation.services.job_kinds import campaign_enqueue
from webapp.studio.models import Checkpoint, Instruction, Reference, Run


@dataclass
class SystemSpec:
    """What a researcher picked as one contestant of a campaign.

    ``outputs`` (imported systems only) maps an instruction's primary key to the text.
    """

    kind: str
    label: str = ""
    checkpoint: Checkpoint | None = None
    run: Run | None = None
    reference_tier: int | None = None
    policy: str = ""
    outputs: Mapping[int, str] = field(default_factory=dict)


def system_default_label(spec: SystemSpec) -> str:
    """A readable, unique-enough name for a system (researchers can override it)."""
    if spec.kind == System.Kind.CHECKPOINT and spec.checkpoint is not None:
        return f"{spec.checkpoint.run.name} @ step {spec.checkpoint.step}"
    if spec.kind == System.Kind.RUN and spec.run is not None:
        return f"{spec.run.name} (latest checkpoint)"
    if spec.kind == System.Kind.REFERENCE:
        return f"reference tier {spec.reference_tier}"
    if spec.kind == System.Kind.BASE_POLICY:
        return f"base policy {spec.policy}"
    return "imported outputs"


def _system_policy(spec: SystemSpec) -> str:
    """The model a generated system runs: a checkpoint path or the base policy's name."""
    if spec.kind == System.Kind.CHECKPOINT:
        if spec.checkpoint is None:
            raise ValidationError({"systems": "a checkpoint system needs a checkpoint"})
        return spec.checkpoint.path
    if spec.kind == System.Kind.RUN:
        if spec.run is None:
            raise ValidationError({"systems": "a run system needs a run"})
        latest = spec.run.checkpoints.order_by("-step").first()
        if latest is None:
            raise ValidationError(
                {"systems": f"run {spec.run.name!r} has no checkpoint yet; pick another system"}
            )
        return latest.path
    if spec.kind == System.Kind.BASE_POLICY:
        if not spec.policy:
            raise ValidationError({"systems": "a base-policy system needs the policy's name"})
        return spec.policy
    return ""


def _check_specs(specs: Sequence[SystemSpec], instructions: Sequence[Instruction]) -> None:
    if len(specs) < 2:
        raise ValidationError({"systems": "a campaign compares at least two systems"})
    labels = [spec.label for spec in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValidationError({"systems": f"two systems share the label {duplicates[0]!r}"})
    wanted = {instruction.pk for instruction in instructions}
    for spec in specs:
        if spec.kind not in System.Kind.values:
            raise ValidationError({"systems": f"unknown system kind {spec.kind!r}"})
        if spec.kind == System.Kind.REFERENCE:
            if spec.reference_tier is None:
                raise ValidationError({"systems": f"{spec.label}: pick a reference tier"})
            have = set(
                Reference.objects.filter(
                    instruction_id__in=wanted, tier=spec.reference_tier
                ).values_list("instruction_id", flat=True)
            )
            missing = sorted(wanted - have)
            if missing:
                names = ", ".join(_instruction_names(missing[:5]))
                raise ValidationError(
                    {
                        "systems": f"{spec.label}: {len(missing)} instruction(s) have no "
                        f"reference of tier {spec.reference_tier} (e.g. {names}); pick "
                        "instructions that have it or another tier"
                    }
                )
        if spec.kind == System.Kind.IMPORTED:
            missing = sorted(wanted - set(spec.outputs))
            if missing:
                names = ", ".join(_instruction_names(missing[:5]))
                raise ValidationError(
                    {
                        "systems": f"{spec.label}: the imported outputs miss {len(missing)} "
                        f"instruction(s) (e.g. {names})"
                    }
                )


def _instruction_names(pks: Iterable[int]) -> list[str]:
    return [
        str(external_id)
        for external_id in Instruction.objects.filter(pk__in=list(pks)).values_list(
            "external_id", flat=True
        )
    ]


@transaction.atomic
def campaign_create(
    *,
    name: str,
    instructions: Sequence[Instruction],
    systems: Sequence[SystemSpec],
    annotators: Iterable[AbstractBaseUser],
    overlap: int = 2,
    guidelines: str = "",
    lease_seconds: int = 30 * 60,
    max_new_tokens: int = 256,
    created_by: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> Campaign:
    """Create a campaign with its systems and, when every output exists, its items.

    Outputs that references or imports provide are stored at once. When a checkpoint, run or
    base-policy system still lacks outputs, the campaign stays ``generating`` and (with
    ``enqueue``) a generation task is queued on the GPU queue after the commit; that task
    builds the items. Invalid input raises ``ValidationError`` and creates nothing.
    """
    if not instructions:
        raise ValidationError({"instructions": "pick at least one instruction"})
    if overlap < 1:
        raise ValidationError({"overlap": "each item needs at least one annotation"})
    specs = [
        SystemSpec(**{**spec.__dict__, "label": spec.label or system_default_label(spec)})
        for spec in systems
    ]
    _check_specs(specs, instructions)
    if Campaign.objects.filter(name=name).exists():
        raise ValidationError({"name": f"a campaign named {name!r} already exists"})
    campaign = Campaign.objects.create(
        name=name,
        guidelines=guidelines,
        overlap=overlap,
        lease_seconds=lease_seconds,
        max_new_tokens=max_new_tokens,
        created_by=created_by,
        task_id=str(uuid.uuid4()),
    )
    campaign.instructions.set(instructions)
    campaign.annotators.set(list(annotators))
    wanted = [instruction.pk for instruction in instructions]
    for spec in specs:
        system = System.objects.create(
            campaign=campaign,
            kind=spec.kind,
            label=spec.label,
            checkpoint=spec.checkpoint,
            run=spec.run,
            reference_tier=spec.reference_tier,
            policy=_system_policy(spec),
        )
        if spec.kind == System.Kind.REFERENCE:
            references = Reference.objects.filter(
                instruction_id__in=wanted, tier=spec.reference_tier
            )
            system_outputs_store(
                system=system, texts={ref.instruction_id: ref.text for ref in references}
            )
        elif spec.kind == System.Kind.IMPORTED:
            system_outputs_store(
                system=system, texts={pk: text for pk, text in spec.outputs.items() if pk in wanted}
            )
    if campaign_missing_outputs(campaign):
        if enqueue:
            campaign_enqueue(campaign)
    else:
        campaign_build_items(campaign=campaign)
    return campaign


def system_outputs_store(*, system: System, texts: Mapping[int, str]) -> int:
    """Store one output per instruction for ``system``; existing outputs are kept as they are."""
    created = SystemOutput.objects.bulk_create(
        [SystemOutput(system=system, instruction_id=pk, text=text) for pk, text in texts.items()],
        ignore_conflicts=True,
    )
    return len(created)


def campaign_missing_outputs(campaign: Campaign) -> dict[System, list[Instruction]]:
    """Per system, the campaign's instructions it has no output for yet."""
    instructions = list(campaign.instructions.order_by("pk"))
    missing: dict[System, list[Instruction]] = {}
    for system in campaign.systems.all():
        have = set(system.outputs.values_list("instruction_id", flat=True))
        lacking = [instruction for instruction in instructions if instruction.pk not in have]
        if lacking:
            missing[system] = lacking
    return missing


@transaction.atomic
def campaign_build_items(*, campaign: Campaign) -> int:
    """Build one item per instruction and pair of systems, in a shuffled (seeded) order, and
    open the campaign. Idempotent: a campaign that has items is only (re)opened."""
    if campaign_missing_outputs(campaign):
        raise ValidationError("some systems still lack outputs; generate them first")
    if not campaign.items.exists():
        systems = list(campaign.systems.order_by("pk"))
        outputs = {
            (output.system_id, output.instruction_id): output
            for output in SystemOutput.objects.filter(system__campaign=campaign)
        }
        pairs = [
            (instruction, first, second)
            for instruction in campaign.instructions.order_by("pk")
            for first, second in combinations(systems, 2)
        ]
        # Interleave instructions and pairs so an annotator does not see one pair in a row.
        random.Random(campaign.pk).shuffle(pairs)
        Item.objects.bulk_create(
            [
                Item(
                    campaign=campaign,
                    instruction=instruction,
                    position=position,
                    system_a=first,
                    system_b=second,
                    output_a=outputs[(first.pk, instruction.pk)],
                    output_b=outputs[(second.pk, instruction.pk)],
                )
                for position, (instruction, first, second) in enumerate(pairs)
            ]
        )
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.OPEN, error="")
    campaign.status = Campaign.Status.OPEN
    return campaign.items.count()


def campaign_fail(*, campaign_id: int, error: str) -> None:
    Campaign.objects.filter(pk=campaign_id).update(status=Campaign.Status.FAILED, error=error)


def campaign_close(*, campaign: Campaign) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CLOSED)
    campaign.status = Campaign.Status.CLOSED
