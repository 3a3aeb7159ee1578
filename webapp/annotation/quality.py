"""Annotator quality for researchers: how much each annotator did, how they vote, and where
annotators disagree. Everything comes from one query over the campaign's votes.

* **Side bias**: the share of "left is better" among an annotator's left/right choices, as shown
  on screen (sides are drawn at random per assignment, so an unbiased annotator sits near 50%).
* **Time per item**: from the lease (when the item was handed out) to the vote; the median is
  reported because a break between items makes the mean meaningless.
* **Agreement with others**: over the items this annotator and at least one other annotator
  both voted on (skips are not votes), the share of (this annotator, other annotator) pairs
  with the same label; "both bad" is its own label, as in the campaign's kappa.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from webapp.annotation.models import Campaign, Vote


@dataclass(frozen=True)
class AnnotatorRow:
    annotator: str
    votes: int
    skips: int
    left_share: float | None
    decisive: int
    median_seconds: float | None
    agreement: float | None
    compared_pairs: int


@dataclass(frozen=True)
class DisagreementVote:
    annotator: str
    outcome: str
    rationale: str


@dataclass
class Disagreement:
    item_id: int
    position: int
    prompt: str
    system_a: str
    system_b: str
    votes: list[DisagreementVote] = field(default_factory=list)


@dataclass(frozen=True)
class Quality:
    annotators: list[AnnotatorRow]
    disagreements: list[Disagreement]
    disagreement_total: int


def campaign_votes(campaign: Campaign) -> list[Vote]:
    """Every vote of the campaign (skips too) with what the panel shows of it, in one query."""
    return list(
        Vote.objects.filter(item__campaign=campaign)
        .select_related(
            "annotator", "assignment", "item__instruction", "item__system_a", "item__system_b"
        )
        .order_by("item__position", "annotator_id")
    )


def annotator_quality(
    campaign: Campaign, *, disagreement_limit: int = 50, votes: Sequence[Vote] | None = None
) -> Quality:
    """The panel; ``votes`` (from :func:`campaign_votes`) when the caller has them already."""
    if votes is None:
        votes = campaign_votes(campaign)
    by_item: dict[int, list[Vote]] = defaultdict(list)
    by_annotator: dict[int, list[Vote]] = defaultdict(list)
    for vote in votes:
        by_annotator[vote.annotator_id].append(vote)
        if vote.counted:
            by_item[vote.item_id].append(vote)

    rows = []
    for annotator_votes in by_annotator.values():
        counted = [v for v in annotator_votes if v.counted]
        sided = [v for v in counted if v.choice in (Vote.Choice.LEFT, Vote.Choice.RIGHT)]
        lefts = sum(1 for v in sided if v.choice == Vote.Choice.LEFT)
        seconds = [
            (v.created_at - v.assignment.created_at).total_seconds()
            for v in annotator_votes
            if v.created_at >= v.assignment.created_at
        ]
        same = pairs = 0
        for vote in counted:
            for other in by_item[vote.item_id]:
                if other.annotator_id != vote.annotator_id:
                    pairs += 1
                    same += other.outcome == vote.outcome
        rows.append(
            AnnotatorRow(
                annotator=annotator_votes[0].annotator.get_username(),
                votes=len(counted),
                skips=len(annotator_votes) - len(counted),
                left_share=lefts / len(sided) if sided else None,
                decisive=len(sided),
                median_seconds=statistics.median(seconds) if seconds else None,
                agreement=same / pairs if pairs else None,
                compared_pairs=pairs,
            )
        )
    rows.sort(key=lambda row: (-row.votes, row.annotator))

    disagreements = []
    total = 0
    for item_votes in by_item.values():
        if len(item_votes) < 2 or len({v.outcome for v in item_votes}) < 2:
            continue
        total += 1
        if len(disagreements) >= disagreement_limit:
            continue
        item = item_votes[0].item
        disagreements.append(
            Disagreement(
                item_id=item.pk,
                position=item.position,
                prompt=item.instruction.prompt,
                system_a=item.system_a.label,
                system_b=item.system_b.label,
                votes=[
                    DisagreementVote(
                        v.annotator.get_username(), v.get_outcome_display(), v.rationale
                    )
                    for v in item_votes
                ],
            )
        )
    return Quality(rows, disagreements, total)
