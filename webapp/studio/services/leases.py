"""One lifecycle for every background job: claim, heartbeat, fenced writes, finish, recovery.

Every kind of background work (a training run, a pipeline job, an evaluation phase, a
campaign's output generation, a judge run) is a database row worked by a Celery task. The row
carries the :class:`~webapp.studio.models.WorkerLease` fields, and this module is the only code
that moves a row through its lifecycle:

1. **Claim** (:func:`lease_claim`): one conditional UPDATE takes a waiting row, or a row whose
   holder went silent for ``STALE_AFTER`` (its worker is gone; the new one resumes), and bumps
   the row's ``epoch``. The returned :class:`Lease` carries that epoch as the *fencing token*.
2. **Heartbeat** (:meth:`Lease.beat`): a thread marks the row alive every few seconds; a beat
   that finds the row no longer held (another worker took it over, the job was cancelled or
   finished) marks the lease lost, and the next check in the worker raises :class:`LeaseLost`.
3. **Fenced writes**: every write a job makes goes through :meth:`Lease.update` (a conditional
   UPDATE ``WHERE epoch = token``) or inside :meth:`Lease.fenced` (a transaction that first
   re-takes the lease row with such an UPDATE, which also locks it until commit). A worker
   that lost its lease therefore writes nothing more, even if it does not know yet: a takeover
   bumps the epoch, and a write by the old holder matches no row.
4. **Finish** (:meth:`Lease.finish`): the final status, conditional on the token.
5. **Recovery** (:func:`sweep_kind`, run by Celery beat): a row whose holder was lost, or a
   waiting row whose message may be lost (never sent, or sent long ago and still unclaimed),
   is sent again; the row is marked and audited only *after* the send succeeded, so a failed
   send is simply retried on the next pass.

Sending is :func:`enqueue_on_commit` for every launch path: the task is sent once the row is
committed; a failed send is logged and left to the sweep (``enqueued_at`` stays empty).
Delivery is at least once; duplicate messages are harmless because only a claim works.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from webapp.studio.models import WorkerLease

log = logging.getLogger(__name__)

# A held row whose heartbeat is older than this is presumed dead and may be claimed again.
STALE_AFTER = timedelta(seconds=int(getattr(settings, "WRITING_RL_RUN_STALE_S", 180)))
# A lost row's task is sent again once per loss; only if it is still lost this long after that
# (its message itself lost, e.g. with a broker restarted without persistence) once more.
REQUEUE_AGAIN_AFTER = timedelta(hours=1)
# A waiting row whose task was sent this long ago and that nobody claimed may have lost its
# message (a broker restarted without persistence): it is sent again (duplicates are harmless).
QUEUED_GRACE = timedelta(seconds=int(getattr(settings, "WRITING_RL_QUEUED_GRACE_S", 600)))
# A waiting row never sent (created while the broker was down) is sent by the sweep once it
# is this old (so a sweep does not race the launch path's own send).
UNSENT_GRACE = timedelta(seconds=int(getattr(settings, "WRITING_RL_UNSENT_GRACE_S", 5)))

Leased = TypeVar("Leased", bound=WorkerLease)


def worker_name(task_id: str | None = None) -> str:
    """Who holds a row: host, process and task, as stored in ``claimed_by``."""
    return f"{socket.gethostname()}:{os.getpid()}:{task_id or 'inline'}"


class LeaseLost(Exception):
    """This worker no longer holds the job (taken over, cancelled or finished): it must stop
    and write nothing more."""


@dataclass(frozen=True)
class JobKind:
    """How one kind of background job maps onto the lifecycle.

    ``waiting``: statuses of a row waiting for a worker (its message may be lost);
    ``running``: the statuses a holder works in, where the *first* is the one a claim sets.
    A row in a ``running`` status with no holder (``claimed_by`` empty) is waiting too — an
    evaluation handed from generation to judging. ``send(row)`` sends the row's task now
    (raising when the broker refuses); ``audit(row, action, details)`` records a sweep action.
    """

    name: str
    model: type[WorkerLease]
    waiting: tuple[str, ...]
    running: tuple[str, ...]
    cancelled: str | None
    send: Callable[[Any], None]
    audit: Callable[[Any, str, dict[str, Any]], None]

    @property
    def has_cancel_flag(self) -> bool:
        return any(f.name == "cancel_requested" for f in self.model._meta.get_fields())


def _stale(now: datetime) -> Q:
    return Q(heartbeat_at__lt=now - STALE_AFTER) | Q(heartbeat_at__isnull=True)


def stale_running(now: datetime, running: tuple[str, ...] = ("running",)) -> Q:
    """Rows held by a worker that has been silent for ``STALE_AFTER``."""
    return Q(status__in=running) & ~Q(claimed_by="") & _stale(now)


def _claimable(now: datetime, waiting: tuple[str, ...], running: tuple[str, ...]) -> Q:
    return (
        Q(status__in=waiting)
        | Q(status__in=running, claimed_by="")
        | (Q(status__in=running) & _stale(now))
    )


@dataclass
class Lease:
    """A worker's hold on one job row, with the fencing token its claim got.

    Thread-safe: the heartbeat thread calls :meth:`beat`; the worker calls :meth:`check`,
    :meth:`update`, :meth:`fenced` and :meth:`finish`.
    """

    model: type[WorkerLease]
    pk: int
    worker: str
    token: int
    running: tuple[str, ...] = ("running",)
    attempts: int = 1
    lost: threading.Event = field(default_factory=threading.Event, repr=False)

    def _held(self) -> models.QuerySet[Any]:
        return self.model._default_manager.filter(
            pk=self.pk, epoch=self.token, status__in=self.running
        )

    def _gone(self) -> LeaseLost:
        self.lost.set()
        return LeaseLost(
            f"{self.model._meta.model_name} {self.pk}: lease {self.token} of {self.worker} "
            "is no longer held (taken over, cancelled or finished)"
        )

    def check(self) -> None:
        """Raise :class:`LeaseLost` if a heartbeat or a write found the lease gone."""
        if self.lost.is_set():
            raise self._gone()

    def beat(self) -> bool:
        """Mark the row alive; False (and the lease lost from now on) when it is not held."""
        if self.lost.is_set():
            return False
        if self._held().update(heartbeat_at=timezone.now()) == 1:
            return True
        self.lost.set()
        log.warning("%s %s: lease %s lost", self.model._meta.model_name, self.pk, self.token)
        return False

    def update(self, **fields: Any) -> None:
        """One conditional UPDATE of the job's own row; :class:`LeaseLost` if not held."""
        self.check()
        if self._held().update(heartbeat_at=timezone.now(), **fields) != 1:
            raise self._gone()

    @contextmanager
    def fenced(self) -> Iterator[None]:
        """A transaction in which the lease is held: it starts by re-taking the lease row with a
        conditional UPDATE (which locks the row until commit, so no takeover can interleave),
        and raises :class:`LeaseLost` (writing nothing) when the lease is gone. Put every
        insert or update of the job's results inside."""
        self.check()
        try:
            with transaction.atomic():
                if self._held().update(heartbeat_at=timezone.now()) != 1:
                    raise self._gone()
                yield
        except DatabaseError as error:
            # A worker that was frozen inside this transaction finds its session ended by
            # PostgreSQL (webapp/ops/db_sessions.py) and the job taken over meanwhile.
            if self._lost_meanwhile():
                raise self._gone() from error
            raise

    def _lost_meanwhile(self) -> bool:
        """After a failed fenced write: True when the lease is known to be gone (False when it
        is still held, or when the database cannot say)."""
        connection = transaction.get_connection()
        if connection.in_atomic_block:
            return False  # an enclosing transaction is broken; it decides
        if connection.connection is not None and not connection.is_usable():
            connection.close()  # ended by the server: the next query connects again
        try:
            return not self._held().exists()
        except DatabaseError:
            return False

    def finish(self, status: str, **fields: Any) -> bool:
        """Record the final status (or hand the row to its next phase); False when this
        worker no longer held the job, in which case nothing was written."""
        if self.lost.is_set():
            return False
        changed = self._held().update(status=status, **fields)
        self.lost.set()  # the lease ends here either way
        return bool(changed == 1)

    def heartbeat(self) -> LeaseHeartbeat:
        return LeaseHeartbeat(self)


class LeaseHeartbeat(threading.Thread):
    """Beats every ``WRITING_RL_HEARTBEAT_S`` seconds until stopped or until the lease is lost
    (then the worker's next :meth:`Lease.check` raises). Use it as a context manager."""

    def __init__(self, lease: Lease, every_s: float | None = None) -> None:
        super().__init__(name=f"heartbeat-{lease.model._meta.model_name}-{lease.pk}", daemon=True)
        self.lease = lease
        self.every_s = every_s or float(os.environ.get("WRITING_RL_HEARTBEAT_S", "20"))
        self.done = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.done.wait(self.every_s):
                try:
                    if not self.lease.beat():
                        return
                except Exception:
                    log.exception("%s failed", self.name)
                    # A broken connection is not reopened outside a request or task: drop it
                    # so the next beat connects again.
                    connection.close()
        finally:
            connection.close()

    def __enter__(self) -> LeaseHeartbeat:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.done.set()
        self.join(timeout=5)


def lease_claim(
    model: type[WorkerLease],
    pk: int,
    *,
    worker: str = "",
    waiting: tuple[str, ...] = ("queued",),
    running: tuple[str, ...] = ("running",),
    cancelled: str | None = "cancelled",
) -> Lease | None:
    """Take row ``pk`` for ``worker``: a :class:`Lease` only if this call took it.

    A waiting row is claimed; so is a held row whose worker was lost (the caller resumes its
    work) — the epoch goes up by one either way, so the lost worker's writes stop matching. A
    lost row that had been asked to stop ends ``cancelled`` instead.
    """
    now = timezone.now()
    objects = model._default_manager
    claimable = _claimable(now, waiting, running)
    # A held row always names its holder (an empty ``claimed_by`` means "waiting").
    worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    if cancelled and any(f.name == "cancel_requested" for f in model._meta.get_fields()):
        objects.filter(claimable, pk=pk, cancel_requested=True).update(
            status=cancelled, finished_at=now, claimed_by="", epoch=F("epoch") + 1
        )
    row = objects.filter(claimable, pk=pk).values("epoch", "attempts").first()
    if row is None:
        return None
    token = int(row["epoch"]) + 1
    changed = objects.filter(claimable, pk=pk, epoch=row["epoch"]).update(
        status=running[0],
        heartbeat_at=now,
        claimed_by=worker[:300],
        attempts=F("attempts") + 1,
        epoch=token,
    )
    if changed != 1:
        return None
    if any(f.name == "started_at" for f in model._meta.get_fields()):
        objects.filter(pk=pk, started_at__isnull=True).update(started_at=now)
    return Lease(model, pk, worker[:300], token, running, attempts=int(row["attempts"]) + 1)


def lease_of(
    model: type[WorkerLease], pk: int, *, worker: str, running: tuple[str, ...] = ("running",)
) -> Lease | None:
    """The lease ``worker`` holds on row ``pk`` now (its current epoch), or None."""
    row = (
        model._default_manager.filter(pk=pk, status__in=running, claimed_by=worker[:300])
        .values("epoch", "attempts")
        .first()
    )
    if row is None:
        return None
    return Lease(model, pk, worker[:300], int(row["epoch"]), running, int(row["attempts"]))


def lease_heartbeat(model: type[WorkerLease], pk: int, *, worker: str = "") -> bool:
    """Mark the row alive; False when it is no longer held by ``worker`` (taken over)."""
    query = model._default_manager.filter(pk=pk, status="running")
    if worker:
        query = query.filter(claimed_by=worker[:300])
    return bool(query.update(heartbeat_at=timezone.now()) == 1)


# -- sending ---------------------------------------------------------------------------------


def send_now(kind: JobKind, row: Any) -> bool:
    """Send ``row``'s task now and record when; False (logged) when the broker refused."""
    try:
        kind.send(row)
    except Exception:
        log.exception("%s %s: could not send its task (the sweep will retry)", kind.name, row.pk)
        return False
    kind.model._default_manager.filter(pk=row.pk).update(enqueued_at=timezone.now())
    return True


def enqueue_on_commit(kind: JobKind, row: Any) -> None:
    """Send ``row``'s task once the current transaction commits (at once outside one).

    A send that fails (the broker is down) does not undo the committed row: it stays waiting
    with ``enqueued_at`` empty and the sweep sends it when the broker is back."""
    transaction.on_commit(lambda: send_now(kind, row))


def lease_retry(kind: JobKind, pk: int, *, failed: tuple[str, ...], to: str, **fields: Any) -> bool:
    """Queue a failed row of ``kind`` again (a Retry): one conditional UPDATE moves it from a
    ``failed`` status to ``to`` (a waiting status) with a new epoch — so anything left of an
    earlier attempt is fenced off — no holder and not sent yet, plus ``fields``; its task is
    sent once the transaction commits (a failed send is left to the sweep). What the job did
    is kept: the worker that claims it resumes from there. False, changing nothing, when the
    row is not failed (already retried, or never failed)."""
    changed = kind.model._default_manager.filter(pk=pk, status__in=failed).update(
        status=to, epoch=F("epoch") + 1, claimed_by="", heartbeat_at=None,
        enqueued_at=None, requeued_at=None, **fields,
    )  # fmt: skip
    if changed != 1:
        return False
    enqueue_on_commit(kind, kind.model._default_manager.get(pk=pk))
    return True


# -- recovery --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaleSweep:
    """What a sweep did for one kind: rows whose task was sent again after their worker was
    lost, waiting rows whose message was (re)sent, rows asked to stop and marked cancelled,
    and rows whose send failed (tried again on the next pass)."""

    requeued: list[int]
    cancelled: list[int]
    resent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def sweep_kind(kind: JobKind, *, now: datetime | None = None) -> StaleSweep:
    """Send again the task of every row of ``kind`` that no live worker holds and whose
    message may be lost; mark and audit each row only after its send succeeded."""
    now = now or timezone.now()
    objects = kind.model._default_manager
    due = (
        Q(requeued_at__isnull=True)
        | Q(requeued_at__lt=F("heartbeat_at"))
        | Q(requeued_at__lt=now - REQUEUE_AGAIN_AFTER)
    )
    lost = stale_running(now, kind.running)
    unclaimed = Q(status__in=kind.waiting) | Q(status__in=kind.running, claimed_by="")
    unsent = unclaimed & Q(enqueued_at__isnull=True)
    if "created_at" in {f.name for f in kind.model._meta.get_fields()}:
        unsent &= Q(created_at__lt=now - UNSENT_GRACE)
    forgotten = unclaimed & Q(enqueued_at__lt=now - QUEUED_GRACE)
    cancel = kind.has_cancel_flag and kind.cancelled is not None
    if cancel:
        lost_due = lost & (Q(cancel_requested=True) | due)
    else:
        lost_due = lost & due
    result = StaleSweep([], [], [], [])
    with transaction.atomic():
        rows = list(
            objects.select_for_update(skip_locked=True)
            .filter(lost_due | unsent | forgotten)
            .order_by("pk")
        )
        for row in rows:
            details = {
                "status": row.status,
                "heartbeat_at": row.heartbeat_at.isoformat() if row.heartbeat_at else None,
                "claimed_by": row.claimed_by,
                "epoch": row.epoch,
            }
            was_lost = bool(row.claimed_by) and row.status in kind.running
            if was_lost and cancel and getattr(row, "cancel_requested", False):
                objects.filter(pk=row.pk, epoch=row.epoch).update(
                    status=kind.cancelled, finished_at=now, epoch=F("epoch") + 1
                )
                kind.audit(row, "lost_cancelled", details)
                result.cancelled.append(row.pk)
                continue
            try:
                kind.send(row)
            except Exception as error:
                log.warning("%s %s: send failed, retried next pass: %s", kind.name, row.pk, error)
                result.failed.append(row.pk)
                continue
            if was_lost:
                objects.filter(pk=row.pk).update(requeued_at=now, enqueued_at=now)
                kind.audit(row, "requeue", details)
                result.requeued.append(row.pk)
            else:
                details["enqueued_at"] = row.enqueued_at.isoformat() if row.enqueued_at else None
                objects.filter(pk=row.pk).update(enqueued_at=now)
                kind.audit(row, "resend", details)
                result.resent.append(row.pk)
    return result


def leases_recover(
    model: type[Leased],
    *,
    enqueue: Callable[[Leased], None],
    audit: Callable[[Leased, str, dict[str, Any]], None],
    now: datetime | None = None,
) -> StaleSweep:
    """:func:`sweep_kind` for a ``queued``/``running`` model whose ``enqueue`` sends at once."""
    kind = JobKind(
        name=model._meta.model_name or "job",
        model=model,
        waiting=("queued",),
        running=("running",),
        cancelled="cancelled",
        send=enqueue,
        audit=audit,
    )
    return sweep_kind(kind, now=now)
