"""Assignments: leasing an annotator's next item, renewing the lease (see the package's
concurrency rules)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from webapp.annotation.models import Assignment, Campaign, Item

# Claims retried when a candidate fills up between the look and the lock.
_CLAIM_ATTEMPTS = 25


def slots_taken(item: Item, annotator: Any, now: datetime) -> int:
    """Counted votes plus other annotators' live leases; call it holding the item's lock."""
    leases = (
        Assignment.objects.filter(item=item, status=Assignment.Status.LEASED, leased_until__gt=now)
        .exclude(annotator=annotator)
        .count()
    )
    return item.votes_done + leases


# The claim runs on every vote, so its statements are plain SQL written once: building the
# same statements with the ORM cost more CPU than everything else in the vote request.
_ASSIGNMENTS = Assignment._meta.db_table
_ITEMS = Item._meta.db_table

# The annotator's live lease in a campaign, oldest first.
_ACTIVE_LEASE_SQL = (
    f"SELECT a.id FROM {_ASSIGNMENTS} a JOIN {_ITEMS} i ON i.id = a.item_id"
    " WHERE i.campaign_id = %s AND a.annotator_id = %s AND a.status = %s"
    " AND a.leased_until > %s ORDER BY a.created_at, a.id LIMIT 1"
)

# The first open item (queue order) this annotator has not voted on or skipped, with a free
# slot as of now, and the annotator's own (lapsed) lease on it, if any. Ordering by the index
# (not by a computed count) lets PostgreSQL stop at the first free item; everyone fills the
# earliest open items first, so items reach their overlap and leave the queue early.
_CANDIDATE_SQL = (
    "SELECT i.id, i.votes_done, i.complete, i.claim_version,"
    f" (SELECT o.id FROM {_ASSIGNMENTS} o"
    "   WHERE o.item_id = i.id AND o.annotator_id = %(annotator)s AND o.status = %(leased)s"
    "   LIMIT 1)"
    f" FROM {_ITEMS} i"
    " WHERE i.campaign_id = %(campaign)s AND i.complete = %(false)s"
    f" AND NOT EXISTS (SELECT 1 FROM {_ASSIGNMENTS} f WHERE f.item_id = i.id"
    "   AND f.annotator_id = %(annotator)s AND f.status <> %(leased)s)"
    f" AND i.votes_done + (SELECT COUNT(*) FROM {_ASSIGNMENTS} l WHERE l.item_id = i.id"
    "   AND l.status = %(leased)s AND l.leased_until > %(now)s"
    "   AND l.annotator_id <> %(annotator)s) < %(overlap)s"
    " ORDER BY i.position LIMIT 1"
)

# Other annotators' live leases on an item, recounted in a fresh statement under the item's
# lock (the candidate's count is from that statement's snapshot and may miss a lease
# committed since); the write happens only while a slot is free.
_SLOT_FREE = (
    f"(SELECT COUNT(*) FROM {_ASSIGNMENTS} l WHERE l.item_id = %(item)s"
    " AND l.status = %(leased)s AND l.leased_until > %(now)s"
    " AND l.annotator_id <> %(annotator)s) < %(free)s"
)
_LEASE_INSERT_SQL = (
    f"INSERT INTO {_ASSIGNMENTS}"
    " (item_id, annotator_id, a_on_left, status, leased_until, created_at)"
    " SELECT %(item)s, %(annotator)s, %(a_on_left)s, %(leased)s, %(until)s, %(now)s"
    f" WHERE {_SLOT_FREE}"
    " ON CONFLICT (item_id, annotator_id) DO NOTHING RETURNING id"
)
_LEASE_RENEW_SQL = (
    f"UPDATE {_ASSIGNMENTS} SET leased_until = %(until)s"
    f" WHERE id = %(own)s AND status = %(leased)s AND {_SLOT_FREE} RETURNING id"
)

# What the annotation page shows of an item, fetched with the lease in one query.
_ITEM_PAGE = ("item__campaign", "item__instruction", "item__output_a", "item__output_b")


def assignment_active(
    *, campaign: Campaign, annotator: Any, now: datetime | None = None
) -> Assignment | None:
    """The annotator's live lease in ``campaign``, if any (oldest first)."""
    now = now or timezone.now()
    return (
        Assignment.objects.filter(
            item__campaign=campaign,
            annotator=annotator,
            status=Assignment.Status.LEASED,
            leased_until__gt=now,
        )
        .select_related(*_ITEM_PAGE)
        .order_by("created_at", "pk")
        .first()
    )


def _active_lease_id(campaign: Campaign, annotator: Any, now: datetime) -> int | None:
    """The primary key of :func:`assignment_active`'s lease, without loading it."""
    with connection.cursor() as cursor:
        cursor.execute(
            _ACTIVE_LEASE_SQL,
            [
                campaign.pk,
                annotator.pk,
                Assignment.Status.LEASED.value,
                connection.ops.adapt_datetimefield_value(now),
            ],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _assignment_page(pk: int, campaign: Campaign) -> Assignment:
    """A lease with what the annotation page shows of its item, in one query."""
    assignment = Assignment.objects.select_related(
        "item__instruction", "item__output_a", "item__output_b"
    ).get(pk=pk)
    assignment.item.campaign = campaign
    return assignment


def _lock_annotator(annotator: Any) -> None:
    """Serialize one annotator's claims (a double submit asks for the next item twice at
    once; both must get the same one). A no-op where rows cannot be locked (SQLite, whose
    write transactions run one at a time anyway)."""
    if connection.features.has_select_for_update:
        # The annotator's user row as the mutex: plain SQL, this runs on every vote.
        users = get_user_model()._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {users} WHERE id = %s FOR UPDATE", [annotator.pk])


def assignment_claim_next(
    *, campaign: Campaign, annotator: Any, now: datetime | None = None
) -> Assignment | None:
    """Lease the annotator's next item in ``campaign``; None when nothing is left for them.

    A live lease the annotator already holds is returned again (reloads, second tabs and
    double submits get the same item). Otherwise the first open item with a free slot is
    locked, its slots are recounted under the lock, and a lease for
    ``campaign.lease_seconds`` is written. Sides are drawn at random the first time an
    annotator gets an item and kept for that assignment.
    """
    now = now or timezone.now()
    if campaign.status != Campaign.Status.OPEN:
        return None
    for _ in range(_CLAIM_ATTEMPTS):
        # No savepoint: nothing in here raises on a lost race (the lease insert skips a
        # conflict), so a caller's transaction needs no rollback point for it.
        with transaction.atomic(savepoint=False):
            _lock_annotator(annotator)
            current = _active_lease_id(campaign, annotator, now)
            if current is not None:
                return _assignment_page(current, campaign)
            claimed, exhausted = _claim_one(campaign, annotator, now)
        if claimed is not None:
            return _assignment_page(claimed, campaign)
        if exhausted:
            return None
    return None


def _claim_one(campaign: Campaign, annotator: Any, now: datetime) -> tuple[int | None, bool]:
    """One claim attempt: (assignment id, False) on success, (None, True) when no candidate
    is left, (None, False) when the candidate was lost to a concurrent claim (try again)."""
    params = {
        "annotator": annotator.pk,
        "campaign": campaign.pk,
        "leased": Assignment.Status.LEASED.value,
        "false": False,
        "now": connection.ops.adapt_datetimefield_value(now),
        "overlap": campaign.overlap,
    }
    skip_locked = connection.features.has_select_for_update_skip_locked
    with connection.cursor() as cursor:
        if skip_locked:
            # Items another annotator is claiming right now are skipped, not waited for.
            cursor.execute(_CANDIDATE_SQL + " FOR UPDATE OF i SKIP LOCKED", params)
        else:
            cursor.execute(_CANDIDATE_SQL, params)
        row = cursor.fetchone()
        if row is None:
            if not skip_locked:
                return None, True
            # Nothing unlocked: either all is done or others hold the rest right now.
            cursor.execute(_CANDIDATE_SQL, params)
            return None, cursor.fetchone() is None
        item_id, votes_done, complete, claim_version, own_lease = row
        if not skip_locked:
            # No row locks (SQLite): an optimistic claim on the item's version.
            won = Item.objects.filter(pk=item_id, claim_version=claim_version).update(
                claim_version=F("claim_version") + 1
            )
            if won != 1:
                return None, False
            votes_done, complete = Item.objects.values_list("votes_done", "complete").get(
                pk=item_id
            )
        if complete or votes_done >= campaign.overlap:
            return None, False
        write = {
            **params,
            "item": item_id,
            "free": campaign.overlap - votes_done,
            "until": connection.ops.adapt_datetimefield_value(
                now + timedelta(seconds=campaign.lease_seconds)
            ),
        }
        if own_lease is not None:
            # The annotator's own lease had lapsed and the slot is still free: renew it.
            cursor.execute(_LEASE_RENEW_SQL, {**write, "own": own_lease})
        else:
            cursor.execute(_LEASE_INSERT_SQL, {**write, "a_on_left": bool(secrets.randbelow(2))})
        written = cursor.fetchone()
    return (None, False) if written is None else (int(written[0]), False)


def assignment_renew(*, assignment: Assignment, now: datetime | None = None) -> bool:
    """Extend a live lease (an annotator reopening the page keeps the item). False when the
    lease had already expired; the vote may still be accepted if a slot is free."""
    now = now or timezone.now()
    campaign = assignment.item.campaign
    changed = Assignment.objects.filter(
        pk=assignment.pk, status=Assignment.Status.LEASED, leased_until__gt=now
    ).update(leased_until=now + timedelta(seconds=campaign.lease_seconds))
    return changed == 1
