"""Exports of a campaign: every vote as JSONL or CSV, and a TRL-ready preference dataset.

The preference dataset has one row per item whose human majority is decisive, in TRL's
standard (non-conversational) preference format: ``{"prompt", "chosen", "rejected"}``, plain
strings, nothing else (so ``datasets.load_dataset("json", ...)`` feeds ``DPOTrainer`` or a
reward-model trainer as is). Items whose majority is a tie or "both bad" are left out: they
say neither text is preferred. Skips are never exported as preferences. Two options keep
weakly supported items out: ``min_votes`` (counted votes on the item) and ``min_agreement``
(the share of those votes that agree with the majority).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from webapp.annotation.models import Campaign, Item, Vote
from webapp.annotation.results import COUNTED, human_majority

VOTE_COLUMNS = (
    "campaign",
    "item_id",
    "instruction_id",
    "prompt",
    "system_a",
    "system_b",
    "response_a",
    "response_b",
    "left_system",
    "choice",
    "outcome",
    "winner",
    "annotator",
    "rationale",
    "skip_reason",
    "created_at",
)


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


def preference_rows(
    campaign: Campaign, *, min_votes: int = 1, min_agreement: float = 0.0
) -> Iterator[dict[str, str]]:
    """One ``{"prompt", "chosen", "rejected"}`` row per item with a decisive human majority,
    backed by at least ``min_votes`` counted votes of which at least ``min_agreement`` (a
    share, 0 to 1) agree with the majority."""
    majority = human_majority(campaign)
    totals: Counter[int] = Counter()
    support: Counter[int] = Counter()
    counted = Vote.objects.filter(item__campaign=campaign, outcome__in=COUNTED)
    for item_id, outcome in counted.values_list("item_id", "outcome"):
        totals[item_id] += 1
        label = "tie" if outcome == Vote.Outcome.BOTH_BAD else outcome
        support[item_id] += label == majority.get(item_id)
    decisive = {
        item_id: label
        for item_id, label in majority.items()
        if label in ("a", "b")
        and totals[item_id] >= min_votes
        and support[item_id] >= min_agreement * totals[item_id]
    }
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


class _Echo:
    """A file-like object whose ``write`` returns what it is given (streams csv rows)."""

    def write(self, value: str) -> str:
        return value


def as_csv(rows: Iterator[dict[str, Any]], columns: tuple[str, ...]) -> Iterator[str]:
    writer = csv.DictWriter(_Echo(), fieldnames=columns, extrasaction="ignore")
    yield writer.writeheader()
    for row in rows:
        yield writer.writerow(row)
