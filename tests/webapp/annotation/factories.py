"""Small campaigns for the annotation tests: three reference tiers as three systems."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from webapp.annotation.models import Assignment, Campaign, Item, Vote
from webapp.annotation.services.campaigns import SystemSpec, campaign_create
from webapp.annotation.services.votes import vote_record
from webapp.studio.models import Dataset, Instruction, Reference

# Distinctive labels, so a test can prove they never reach an annotator's page.
LABELS = ("SYSTEM-ALPHA-LABEL", "SYSTEM-BRAVO-LABEL", "SYSTEM-CHARLIE-LABEL")


def make_dataset(instructions: int = 2, tiers: int = 3, name: str = "annotation-set") -> Dataset:
    dataset = Dataset.objects.create(name=name)
    for i in range(instructions):
        instruction = Instruction.objects.create(
            dataset=dataset, external_id=f"q{i}", prompt=f"Write a short poem about topic {i}."
        )
        for tier in range(tiers):
            Reference.objects.create(
                instruction=instruction,
                writer=f"writer-{tier}",
                tier=tier,
                text=f"Tier {tier} answer to question {i}. " + "words " * (5 + 10 * tier),
            )
    return dataset


def make_campaign(
    annotators: Sequence[User],
    *,
    instructions: int = 2,
    systems: int = 3,
    overlap: int = 2,
    name: str = "campaign",
    guidelines: str = "Prefer the **clearer** text.",
    lease_seconds: int = 600,
) -> Campaign:
    dataset = make_dataset(instructions=instructions, tiers=systems, name=f"{name}-data")
    specs = [
        SystemSpec(kind="reference", reference_tier=tier, label=LABELS[tier])
        for tier in range(systems)
    ]
    return campaign_create(
        name=name,
        instructions=list(dataset.instructions.order_by("pk")),
        systems=specs,
        annotators=annotators,
        overlap=overlap,
        guidelines=guidelines,
        lease_seconds=lease_seconds,
    )


def cast(annotator: User, item: Item, outcome: str, *, a_on_left: bool = True) -> Vote:
    """Record ``annotator``'s vote on ``item`` with the canonical ``outcome`` (a, b, tie,
    both_bad, skip), going through a lease and the real vote service."""
    assignment = Assignment.objects.create(
        item=item,
        annotator=annotator,
        a_on_left=a_on_left,
        leased_until=timezone.now() + timedelta(minutes=10),
    )
    choice = {
        "a": "left" if a_on_left else "right",
        "b": "right" if a_on_left else "left",
    }.get(outcome, outcome)
    result = vote_record(
        assignment=assignment,
        choice=choice,
        skip_reason="unreadable" if outcome == "skip" else "",
    )
    assert result.created
    return result.vote
