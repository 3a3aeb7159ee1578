"""Exports of a campaign: every vote as JSONL, and a TRL-ready preference dataset.

The preference dataset has one row per item whose human majority is decisive, in TRL's
standard (non-conversational) preference format: ``{"prompt", "chosen", "rejected"}``, plain
strings, nothing else (so ``datasets.load_dataset("json", ...)`` feeds ``DPOTrainer`` or a
reward-model trainer as is). Items whose majority is a tie or "both bad" are left out: they
say neither text is preferred. Skips are never exported as preferences.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from webapp.annotation.models import Campaign, Item, Vote
from webapp.annotation.results import human_majority


def vote_rows(campaign: Campaign) -> Iterator[dict[str, Any]]:
    """Every vote of the campaign, skips included, with both texts and the side shown."""
    votes = (
        Vote.objects.filter(item__campaign=campaign)
        .select_related(
            "annotator",
            "left_system",
            "winner",
            "item__instruction",
            "item__system_a",
            "item__system_b",
            "item__output_a",
            "item__output_b",
        )
        .order_by("item__position", "created_at", "pk")
    )
    for vote in votes.iterator(chunk_size=500):
        item = vote.item
        yield {
            "campaign": campaign.name,
            "item_id": item.pk,
            "instruction_id": item.instruction.external_id,
            "prompt": item.instruction.prompt,
            "system_a": item.system_a.label,
            "system_b": item.system_b.label,
            "response_a": item.output_a.text,
            "response_b": item.output_b.text,
            "left_system": vote.left_system.label,
            "choice": vote.choice,
            "outcome": vote.outcome,
            "winner": vote.winner.label if vote.winner else None,
            "annotator": vote.annotator.get_username(),
            "rationale": vote.rationale,
            "skip_reason": vote.skip_reason,
            "created_at": vote.created_at.isoformat(),
        }


def preference_rows(campaign: Campaign) -> Iterator[dict[str, str]]:
    """One ``{"prompt", "chosen", "rejected"}`` row per item with a decisive human majority."""
    majority = human_majority(campaign)
    decisive = {item_id: label for item_id, label in majority.items() if label in ("a", "b")}
    items = (
        Item.objects.filter(pk__in=decisive)
        .select_related("instruction", "output_a", "output_b")
        .order_by("position")
    )
    for item in items.iterator(chunk_size=500):
        a_won = decisive[item.pk] == "a"
        yield {
            "prompt": item.instruction.prompt,
            "chosen": item.output_a.text if a_won else item.output_b.text,
            "rejected": item.output_b.text if a_won else item.output_a.text,
        }


def as_jsonl(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"
