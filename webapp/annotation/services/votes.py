"""Votes: an annotator's verdict on a leased item, recorded at most once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from django.utils import timezone

from webapp.annotation.models import Assignment, Campaign, Item, Vote
from webapp.annotation.services.assignments import assignment_claim_next, slots_taken

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The annotator's lease expired and the item's last slot went to someone else."""


@dataclass(frozen=True)
class VoteResult:
    vote: Vote
    created: bool


_OUTCOME_FOR_A_LEFT = {
    Vote.Choice.LEFT: Vote.Outcome.A,
    Vote.Choice.RIGHT: Vote.Outcome.B,
    Vote.Choice.TIE: Vote.Outcome.TIE,
    Vote.Choice.BOTH_BAD: Vote.Outcome.BOTH_BAD,
    Vote.Choice.SKIP: Vote.Outcome.SKIP,
}
_SWAP = {Vote.Outcome.A: Vote.Outcome.B, Vote.Outcome.B: Vote.Outcome.A}


def outcome_from_choice(choice: str, *, a_on_left: bool) -> str:
    """Undo the screen layout: what the annotator pressed, in the item's canonical order.

    >>> outcome_from_choice("left", a_on_left=False)
    'b'
    >>> outcome_from_choice("tie", a_on_left=False)
    'tie'
    """
    outcome = _OUTCOME_FOR_A_LEFT[Vote.Choice(choice)]
    if not a_on_left:
        outcome = _SWAP.get(outcome, outcome)
    return str(outcome.value)


def vote_record(
    *,
    assignment: Assignment,
    choice: str,
    rationale: str = "",
    skip_reason: str = "",
    now: datetime | None = None,
) -> VoteResult:
    """Record the annotator's verdict on their assignment, at most once.

    A repeated submit returns the first vote with ``created=False`` (even when both arrive at
    the same instant: the unique constraint decides). A skip needs a reason and frees the slot
    for another annotator. A vote on an expired lease is still taken while the item has a free
    slot; otherwise :class:`LeaseLost` is raised and nothing is written.
    """
    now = now or timezone.now()
    if choice not in Vote.Choice.values:
        raise ValidationError({"choice": f"unknown choice {choice!r}"})
    skip_reason = skip_reason.strip()
    if choice == Vote.Choice.SKIP and not skip_reason:
        raise ValidationError({"skip_reason": "say why you skip this item"})
    item = assignment.item
    overlap = item.campaign.overlap
    counted = choice != Vote.Choice.SKIP
    outcome = outcome_from_choice(choice, a_on_left=assignment.a_on_left)
    try:
        with transaction.atomic():
            if counted and assignment.leased_until <= now:
                # The lease lapsed: the slot may have gone to someone else. Decide under the
                # item's lock, which every claim takes too.
                locked = Item.objects.select_for_update().get(pk=item.pk)
                if slots_taken(locked, assignment.annotator_id, now) >= overlap and not (
                    Vote.objects.filter(item=item, annotator_id=assignment.annotator_id).exists()
                ):
                    raise LeaseLost(
                        "your lease on this item expired and other annotators completed it; "
                        "your vote was not needed"
                    )
            # First statement that writes: a concurrent twin blocks here on the unique index
            # until this one commits, then fails with IntegrityError (handled below).
            vote = Vote.objects.create(
                item=item,
                annotator_id=assignment.annotator_id,
                assignment=assignment,
                choice=choice,
                outcome=outcome,
                left_system_id=item.system_a_id if assignment.a_on_left else item.system_b_id,
                winner_id={"a": item.system_a_id, "b": item.system_b_id}.get(outcome),
                rationale=rationale.strip(),
                skip_reason=skip_reason if choice == Vote.Choice.SKIP else "",
            )
            Assignment.objects.filter(pk=assignment.pk).update(
                status=Assignment.Status.VOTED if counted else Assignment.Status.SKIPPED,
                completed_at=now,
            )
            if counted:
                # One statement: the row lock of the UPDATE makes the counter and the flag
                # consistent however many votes land at once.
                Item.objects.filter(pk=item.pk).update(
                    votes_done=F("votes_done") + 1,
                    complete=ExpressionWrapper(
                        Q(votes_done__gte=overlap - 1), output_field=BooleanField()
                    ),
                )
    except IntegrityError:
        existing = Vote.objects.filter(
            item_id=assignment.item_id, annotator_id=assignment.annotator_id
        ).first()
        if existing is None:
            raise
        return VoteResult(existing, created=False)
    return VoteResult(vote, created=True)


def vote_and_claim_next(
    *,
    assignment: Assignment,
    annotator: Any,
    choice: str,
    rationale: str = "",
    skip_reason: str = "",
) -> tuple[str, Assignment | None]:
    """Record the vote (see :func:`vote_record`) and lease the annotator's next item, in one
    transaction: one commit per vote. Returns a notice for the annotator (empty, or why the
    vote was not needed) and the next assignment (None when nothing is left).

    The vote never depends on the claim: a claim that fails rolls back to its own savepoint
    and is tried again after the vote is committed. ``ValidationError`` writes nothing.
    """
    notice = ""
    retry_claim = False
    following: Assignment | None = None
    campaign = assignment.item.campaign
    with transaction.atomic():
        try:
            vote_record(
                assignment=assignment,
                choice=choice,
                rationale=rationale,
                skip_reason=skip_reason,
            )
        except LeaseLost as exc:
            notice = str(exc)
        try:
            with transaction.atomic():
                following = assignment_claim_next(campaign=campaign, annotator=annotator)
        except DatabaseError:
            logger.warning("claim after a vote failed; retrying after the commit", exc_info=True)
            retry_claim = True
    if retry_claim:
        following = assignment_claim_next(campaign=campaign, annotator=annotator)
    return notice, following


# How long an annotator may take back their last vote.
UNDO_WINDOW = timedelta(minutes=10)


def vote_undo_last(
    *, campaign: Campaign, annotator: Any, now: datetime | None = None
) -> Assignment:
    """Take back the annotator's most recent vote (or skip) in ``campaign`` and lease its item
    to them again; returns that assignment.

    Only the latest vote, only within :data:`UNDO_WINDOW`, only while the campaign is open. A
    skip is not taken back once another annotator has the slot it freed. The item's counter
    and completeness are restored in the same transaction as the delete; on error nothing
    changes (``ValidationError`` with a message for the annotator).
    """
    now = now or timezone.now()
    if campaign.status != Campaign.Status.OPEN:
        raise ValidationError(f"“{campaign.annotator_title}” is not open; votes are final.")
    with transaction.atomic():
        vote = (
            Vote.objects.select_related("assignment")
            .filter(item__campaign=campaign, annotator=annotator)
            .order_by("-created_at", "-pk")
            .first()
        )
        if vote is None:
            raise ValidationError("You have no vote to undo in this campaign.")
        if vote.created_at < now - UNDO_WINDOW:
            minutes = int(UNDO_WINDOW.total_seconds() // 60)
            raise ValidationError(
                f"Your last vote is more than {minutes} minutes old; it can no longer be undone."
            )
        item = Item.objects.select_for_update().get(pk=vote.item_id)
        if not vote.counted and slots_taken(item, annotator, now) >= campaign.overlap:
            raise ValidationError(
                "Another annotator has taken the item you skipped; the skip stays."
            )
        assignment = vote.assignment
        deleted, _ = Vote.objects.filter(pk=vote.pk).delete()
        if not deleted:  # a concurrent undo got there first
            raise ValidationError("That vote was already undone.")
        Assignment.objects.filter(pk=assignment.pk).update(
            status=Assignment.Status.LEASED,
            completed_at=None,
            leased_until=now + timedelta(seconds=campaign.lease_seconds),
        )
        if vote.counted:
            # The right-hand sides read the row before the update (as in vote_record).
            Item.objects.filter(pk=item.pk).update(
                votes_done=F("votes_done") - 1,
                complete=ExpressionWrapper(
                    Q(votes_done__gt=campaign.overlap), output_field=BooleanField()
                ),
            )
    assignment.refresh_from_db()
    return assignment
