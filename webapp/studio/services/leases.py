"""Worker leases on the rows of long tasks (training runs, pipeline jobs).

A worker takes a row with one conditional UPDATE (healthchecks style): a ``queued`` row, or a
``running`` row whose heartbeat is older than ``STALE_AFTER`` — its worker is gone, and the
new one resumes the work. The worker then writes a heartbeat every few seconds. A broker
re-delivers the message of a lost worker only after its visibility timeout (hours), so
:func:`leases_recover` — run by Celery beat — sends the task of each lost row again, once per
loss. Duplicate messages are harmless: only the caller whose UPDATE changed the row works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from webapp.studio.models import WorkerLease

# A running row whose heartbeat is older than this is presumed dead and may be claimed again.
STALE_AFTER = timedelta(seconds=int(getattr(settings, "WRITING_RL_RUN_STALE_S", 180)))
# A lost row's task is sent again once per loss; only if it is still lost this long after that
# (its message itself lost, e.g. with a broker restarted without persistence) once more.
REQUEUE_AGAIN_AFTER = timedelta(hours=1)

Leased = TypeVar("Leased", bound=WorkerLease)


def stale_running(now: datetime) -> Q:
    """Rows ``running`` whose worker has been silent for ``STALE_AFTER``."""
    return Q(status="running") & (
        Q(heartbeat_at__lt=now - STALE_AFTER) | Q(heartbeat_at__isnull=True)
    )


def lease_claim(model: type[WorkerLease], pk: int, *, worker: str = "") -> bool:
    """Take row ``pk`` for ``worker``: True only if exactly one row changed.

    A queued row is claimed; so is a running row whose worker was lost (the caller resumes
    its work). A lost row that had been asked to stop ends ``cancelled`` instead.
    """
    now = timezone.now()
    stale = stale_running(now)
    objects = model._default_manager
    objects.filter(stale, pk=pk, cancel_requested=True).update(status="cancelled", finished_at=now)
    changed = objects.filter(Q(status="queued") | stale, pk=pk, cancel_requested=False).update(
        status="running",
        heartbeat_at=now,
        claimed_by=worker[:300],
        attempts=F("attempts") + 1,
    )
    if changed == 1:
        objects.filter(pk=pk, started_at__isnull=True).update(started_at=now)
    return changed == 1


def lease_heartbeat(model: type[WorkerLease], pk: int, *, worker: str = "") -> bool:
    """Mark the row alive; False when it is no longer held by ``worker`` (taken over)."""
    query = model._default_manager.filter(pk=pk, status="running")
    if worker:
        query = query.filter(claimed_by=worker[:300])
    return bool(query.update(heartbeat_at=timezone.now()) == 1)


@dataclass(frozen=True)
class StaleSweep:
    """What a sweep did: rows whose task was sent again, and rows that had been asked to stop
    and were marked cancelled."""

    requeued: list[int]
    cancelled: list[int]


def leases_recover(
    model: type[Leased],
    *,
    enqueue: Callable[[Leased], None],
    audit: Callable[[Leased, str, dict[str, Any]], None],
    now: datetime | None = None,
) -> StaleSweep:
    """Send the task of every row of ``model`` whose worker was lost again.

    Each loss is sent once: again only after the row had a heartbeat since (it was taken
    over and lost again) or after ``REQUEUE_AGAIN_AFTER``. A lost row asked to stop is marked
    cancelled instead. ``audit(row, action, details)`` records each action (``requeue`` or
    ``lost_cancelled``); ``enqueue`` should send on commit.
    """
    now = now or timezone.now()
    due = (
        Q(requeued_at__isnull=True)
        | Q(requeued_at__lt=F("heartbeat_at"))
        | Q(requeued_at__lt=now - REQUEUE_AGAIN_AFTER)
    )
    requeued: list[int] = []
    cancelled: list[int] = []
    with transaction.atomic():
        lost = (
            model._default_manager.select_for_update(skip_locked=True)
            .filter(stale_running(now))
            .filter(Q(cancel_requested=True) | due)
            .order_by("pk")
        )
        for row in lost:
            details = {
                "heartbeat_at": row.heartbeat_at.isoformat() if row.heartbeat_at else None,
                "claimed_by": row.claimed_by,
            }
            if getattr(row, "cancel_requested", False):
                model._default_manager.filter(pk=row.pk).update(status="cancelled", finished_at=now)
                audit(row, "lost_cancelled", details)
                cancelled.append(row.pk)
                continue
            model._default_manager.filter(pk=row.pk).update(requeued_at=now)
            audit(row, "requeue", details)
            enqueue(row)
            requeued.append(row.pk)
    return StaleSweep(requeued, cancelled)
