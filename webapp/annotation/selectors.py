"""Reads of the annotation app: what an annotator may see, and progress."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404

from webapp.annotation.models import Assignment, Campaign, Item, Vote


def campaigns_for_annotator(annotator: Any) -> QuerySet[Campaign]:
    """Campaigns the annotator takes part in, open ones first."""
    return (
        Campaign.objects.filter(annotators=annotator)
        .exclude(status=Campaign.Status.FAILED)
        .order_by("status", "-created_at")
    )


def assignment_for(annotator: Any, assignment_id: int, *, texts: bool = True) -> Assignment:
    """The annotator's own assignment, or 404: another annotator's assignment does not exist
    as far as this annotator can tell. ``texts=False`` leaves the instruction and the two
    outputs to be loaded on first use (the vote shows the next item, not this one)."""
    related = ["item__campaign"]
    if texts:
        related += ["item__instruction", "item__output_a", "item__output_b"]
    return get_object_or_404(
        Assignment.objects.select_related(*related), pk=assignment_id, annotator=annotator
    )


def campaign_for_annotator(annotator: Any, campaign_id: int) -> Campaign:
    return get_object_or_404(Campaign, pk=campaign_id, annotators=annotator)


@dataclass(frozen=True)
class Progress:
    done: int
    target: int
    items: int = 0

    @property
    def percent(self) -> int:
        """How full the bar is; nothing to do (0 / 0) is an empty bar, not a finished one."""
        return 0 if self.target == 0 else min(100, round(100 * self.done / self.target))


def campaign_progress(campaign: Campaign) -> Progress:
    """Counted votes against items x overlap."""
    totals = Item.objects.filter(campaign=campaign).aggregate(n=Count("pk"), done=Sum("votes_done"))
    items = totals["n"] or 0
    target = items * campaign.overlap
    return Progress(min(totals["done"] or 0, target), target, items)


def annotator_progress(campaign: Campaign, annotator: Any, items: int | None = None) -> Progress:
    """Items the annotator finished (voted or skipped) against their fair share of the work:
    items x overlap / annotators, at most every item. ``items``: the campaign's item count,
    when the caller has it already."""
    done = Vote.objects.filter(item__campaign=campaign, annotator=annotator).count()
    if items is None:
        items = campaign.items.count()
    return _annotator_share(campaign, done, items, campaign.annotators.count())


def _annotator_share(campaign: Campaign, done: int, items: int, annotators: int) -> Progress:
    share = min(items, math.ceil(items * campaign.overlap / max(1, annotators)))
    return Progress(done, max(share, done), items)


def progress_pair(campaign: Campaign, annotator: Any) -> tuple[Progress, Progress]:
    """(the annotator's progress, the campaign's), as :func:`annotator_progress` and
    :func:`campaign_progress` compute them, in one round trip: every vote request shows both,
    so this is the hot path (plain SQL: four indexed scalar subqueries)."""
    item_table = Item._meta.db_table
    vote_table = Vote._meta.db_table
    members = Campaign.annotators.through._meta.db_table
    sql = (
        f"SELECT (SELECT COUNT(*) FROM {item_table} WHERE campaign_id = %s),"
        f" (SELECT COALESCE(SUM(votes_done), 0) FROM {item_table} WHERE campaign_id = %s),"
        f" (SELECT COUNT(*) FROM {vote_table} v JOIN {item_table} i ON v.item_id = i.id"
        f"  WHERE i.campaign_id = %s AND v.annotator_id = %s),"
        f" (SELECT COUNT(*) FROM {members} WHERE campaign_id = %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign.pk, campaign.pk, campaign.pk, annotator.pk, campaign.pk])
        items, done_all, done_mine, annotators = (int(v) for v in cursor.fetchone())
    target = items * campaign.overlap
    overall = Progress(min(done_all, target), target, items)
    return _annotator_share(campaign, done_mine, items, annotators), overall


def campaigns_overview() -> QuerySet[Campaign]:
    """Every campaign with item and vote counts, for researchers."""
    return Campaign.objects.annotate(
        item_count=Count("items", distinct=True),
        vote_count=Count("items__votes", filter=~Q(items__votes__choice="skip"), distinct=True),
    ).order_by("-created_at")
