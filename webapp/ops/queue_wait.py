"""What a waiting background job waits for: its Celery queue, its place in that queue, the job
ahead of it, and whether any live worker serves the queue.

Every kind of job on the common lifecycle (:func:`webapp.ops.recovery.job_kinds`) is a row
that waits for a worker of one queue (:mod:`workers.queues`): a run, a pipeline job (its kind
decides the queue), an evaluation's generation or judging phase, a campaign's output
generation, a judge run. A row waits while its status is a waiting one, or a working one
nobody holds (an evaluation handed from generation to judging); it runs while a worker holds
it. Waiting rows of one queue are ordered as they were sent (``enqueued_at``, else
``created_at``; then the kind and id), oldest first — the order in which a worker of that
queue takes them. The job ahead of the first waiting row is the one a worker of the queue is
running (the oldest claim when several are).

Whether a worker serves the queue comes from the cached worker check of ``/healthz``
(:func:`webapp.ops.health.served_queues`): every live worker answers with the queues it
consumes.

It lives in ops because it spans the apps; pages reach it through the ``queue_wait``
template tag (``{% load queues %}``), so no app imports ops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Model, Q
from django.urls import reverse

from webapp.annotation.services.job_kinds import CAMPAIGN_KIND, JUDGE_RUN_KIND
from webapp.evals.services.jobs import EVAL_GENERATE_KIND, EVAL_JUDGE_KIND
from webapp.ops.health import ServedQueues, served_queues
from webapp.studio.models import PipelineJob
from webapp.studio.services.leases import JobKind
from webapp.studio.services.pipeline import JOB_KIND
from webapp.studio.services.runs import RUN_KIND
from workers.queues import QueueName, pipeline_job_queue

# How to start a worker that serves a queue (the Makefile's worker serves every queue).
START_WORKER_HINT = "make worker"


@dataclass(frozen=True)
class Source:
    """One kind of job as the queues see it: its lifecycle kind, the queue a row waits on, and
    how a page names and links a row."""

    kind: JobKind
    queue: Callable[[Any], QueueName]
    label: Callable[[Any], str]
    url: Callable[[Any], str]
    # Rows of this kind that could wait on ``queue`` (narrows the query; None: all of them).
    on_queue: Callable[[QueueName], Q | None] = lambda queue: Q()


def _pipeline_on_queue(queue: QueueName) -> Q | None:
    kinds = [kind for kind in PipelineJob.Kind.values if pipeline_job_queue(kind) == queue]
    return Q(kind__in=kinds) if kinds else None


def _fixed(queue: QueueName) -> Callable[[QueueName], Q | None]:
    return lambda asked: Q() if asked == queue else None


SOURCES: tuple[Source, ...] = (
    Source(
        RUN_KIND,
        queue=lambda run: QueueName.GPU,
        label=lambda run: f"run #{run.pk} “{run.name}”",
        url=lambda run: reverse("studio:run_detail", args=[run.pk]),
        on_queue=_fixed(QueueName.GPU),
    ),
    Source(
        JOB_KIND,
        queue=lambda job: pipeline_job_queue(job.kind),
        label=lambda job: f"job #{job.pk} {job.get_kind_display()} (dataset {job.dataset_id})",
        url=lambda job: reverse("studio:dataset_detail", args=[job.dataset_id]) + f"#job-{job.pk}",
        on_queue=_pipeline_on_queue,
    ),
    Source(
        EVAL_GENERATE_KIND,
        queue=lambda eval_run: QueueName.GPU,
        label=lambda eval_run: f"evaluation #{eval_run.pk} “{eval_run.name}” (generation)",
        url=lambda eval_run: reverse("evals:detail", args=[eval_run.pk]),
        on_queue=_fixed(QueueName.GPU),
    ),
    Source(
        EVAL_JUDGE_KIND,
        queue=lambda eval_run: QueueName.JUDGE,
        label=lambda eval_run: f"evaluation #{eval_run.pk} “{eval_run.name}” (judging)",
        url=lambda eval_run: reverse("evals:detail", args=[eval_run.pk]),
        on_queue=_fixed(QueueName.JUDGE),
    ),
    Source(
        CAMPAIGN_KIND,
        queue=lambda campaign: QueueName.GPU,
        label=lambda campaign: f"campaign #{campaign.pk} “{campaign.name}” (output generation)",
        url=lambda campaign: reverse("annotation:campaign", args=[campaign.pk]),
        on_queue=_fixed(QueueName.GPU),
    ),
    Source(
        JUDGE_RUN_KIND,
        queue=lambda judge_run: QueueName.JUDGE,
        label=lambda judge_run: (
            f"judge run #{judge_run.pk} {judge_run.judge_name} (campaign {judge_run.campaign_id})"
        ),
        url=lambda judge_run: (
            reverse("annotation:results", args=[judge_run.campaign_id])
            + f"#judge-run-{judge_run.pk}"
        ),
        on_queue=_fixed(QueueName.JUDGE),
    ),
)


@dataclass(frozen=True)
class QueuedWork:
    """One job on a queue, as a page shows it."""

    kind: str
    pk: int
    label: str
    url: str
    since: datetime
    running: bool

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.pk)


@dataclass(frozen=True)
class QueueState:
    """One queue: its waiting jobs in the order a worker takes them, and the jobs running."""

    queue: QueueName
    waiting: list[QueuedWork]
    running: list[QueuedWork]


@dataclass(frozen=True)
class QueueWait:
    """What one waiting job waits for. ``position`` is 1-based among ``waiting_count`` waiting
    jobs of ``queue``; ``ahead`` the job before it (the earlier waiting one, or for the first
    the running one; None when the queue is free); ``served`` whether a live worker consumes
    the queue (None: unknown, ``error`` says why)."""

    queue: QueueName
    position: int
    waiting_count: int
    ahead: QueuedWork | None
    running: list[QueuedWork]
    served: bool | None
    workers: list[str] = field(default_factory=list)
    error: str = ""
    start_hint: str = START_WORKER_HINT


def _waiting(kind: JobKind) -> Q:
    return Q(status__in=kind.waiting) | Q(status__in=kind.running, claimed_by="")


def _held(kind: JobKind) -> Q:
    return Q(status__in=kind.running) & ~Q(claimed_by="")


def _work(source: Source, row: Any, *, running: bool) -> QueuedWork:
    # Waiting rows in the order they were sent; running ones in the order they started.
    started = getattr(row, "started_at", None) if running else None
    since: datetime = started or row.enqueued_at or row.created_at
    return QueuedWork(
        kind=source.kind.name,
        pk=row.pk,
        label=source.label(row),
        url=source.url(row),
        since=since,
        running=running,
    )


def _order(work: QueuedWork) -> tuple[datetime, int, int]:
    kinds = [source.kind.name for source in SOURCES]
    return (work.since, kinds.index(work.kind), work.pk)


def queue_state(queue: QueueName | str) -> QueueState:
    """Every job waiting on ``queue`` (oldest first) and every job running on it."""
    queue = QueueName(queue)
    waiting: list[QueuedWork] = []
    running: list[QueuedWork] = []
    for source in SOURCES:
        narrow = source.on_queue(queue)
        if narrow is None:
            continue
        manager = source.kind.model._default_manager
        for held, into in ((False, waiting), (True, running)):
            rows = manager.filter(narrow & (_held(source.kind) if held else _waiting(source.kind)))
            into.extend(
                _work(source, row, running=held) for row in rows if source.queue(row) == queue
            )
    return QueueState(queue, sorted(waiting, key=_order), sorted(running, key=_order))


def _source_of(row: Model) -> Source | None:
    """The kind a row waits as (an evaluation: by its phase), or None if it is not waiting."""
    for source in SOURCES:
        kind = source.kind
        if not isinstance(row, kind.model):
            continue
        status = getattr(row, "status", None)
        if status in kind.waiting or (status in kind.running and not row.claimed_by):
            return source
    return None


def is_waiting(row: Model) -> bool:
    """Whether ``row`` is a job waiting for a worker (no query)."""
    return _source_of(row) is not None


def queue_wait(
    row: Model,
    *,
    states: dict[QueueName, QueueState] | None = None,
    served: ServedQueues | None = None,
) -> QueueWait | None:
    """What ``row`` (a run, pipeline job, evaluation, campaign or judge run) waits for, or None
    when it is not waiting for a worker. ``states`` and ``served`` let a page showing many
    rows look each queue and the workers up once."""
    source = _source_of(row)
    if source is None:
        return None
    queue = source.queue(row)
    if states is not None and queue in states:
        state = states[queue]
    else:
        state = queue_state(queue)
        if states is not None:
            states[queue] = state
    keys = [work.key for work in state.waiting]
    key = (source.kind.name, row.pk)
    # A row read before it was committed, or changed since, may be missing: it is last.
    index = keys.index(key) if key in keys else len(keys)
    if index > 0:
        ahead: QueuedWork | None = state.waiting[index - 1]
    else:
        ahead = state.running[0] if state.running else None
    served = served if served is not None else served_queues()
    workers = served.queues.get(queue.value, [])
    return QueueWait(
        queue=queue,
        position=index + 1,
        waiting_count=max(len(keys), index + 1),
        ahead=ahead,
        running=state.running,
        served=bool(workers) if served.known else None,
        workers=workers,
        error=served.error,
    )


__all__ = [
    "SOURCES",
    "START_WORKER_HINT",
    "QueueState",
    "QueueWait",
    "QueuedWork",
    "is_waiting",
    "queue_state",
    "queue_wait",
]
