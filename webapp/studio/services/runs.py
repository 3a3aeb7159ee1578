"""Runs: create (and enqueue), claim, heartbeat, finish, cancel.

A run's training task claims the run through the database (healthchecks style): one UPDATE
``WHERE status = 'queued'`` — or a ``running`` row whose heartbeat went stale, which is how a
run whose worker died is taken over and resumed from its last checkpoint. A re-delivered
message for a run that is alive or finished changes no row and does nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Prefetch, Q
from django.utils import timezone

from rl_engine.training import TrainConfig, TrainingInstruction
from webapp.studio.importers import criteria_text
from webapp.studio.models import (
    AuditLog,
    CurriculumState,
    Dataset,
    Instruction,
    Judgment,
    Reference,
    Run,
    Selection,
)
from webapp.studio.paths import ConfigRefused, check_train_config
from webapp.studio.services.curriculum_store import curriculum_initialize
from webapp.studio.services.leases import (
    JobKind,
    Lease,
    StaleSweep,
    enqueue_on_commit,
    lease_claim,
    lease_heartbeat,
    lease_of,
    sweep_kind,
)
from workers.dispatch import send
from workers.queues import TaskName


class RunConfigError(ValueError):
    """The run cannot be created: an invalid TrainConfig or no training instruction."""


def _config(config: dict[str, Any] | TrainConfig) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return TrainConfig.from_dict(config.to_dict())
    try:
        return TrainConfig.from_dict(config)
    except (TypeError, ValueError) as error:
        raise RunConfigError(str(error)) from error


def training_instruction_ids(
    *, dataset: Dataset, selection: Selection | None = None
) -> list[tuple[int, int]]:
    """(instruction id, number of tiered references) of the training instructions.

    Training instructions are the dataset's ``train`` split with at least one tiered
    reference; with a selection, only the instructions it chose.
    """
    instructions = Instruction.objects.filter(dataset=dataset, split=Instruction.Split.TRAIN)
    if selection is not None:
        instructions = instructions.filter(
            selectionentry__selection=selection, selectionentry__chosen=True
        )
    rows = (
        instructions.annotate(tiers=Count("references", filter=Q(references__tier__isnull=False)))
        .filter(tiers__gte=1)
        .order_by("id")
        .values_list("id", "tiers")
    )
    return list(rows)


@transaction.atomic
def run_create(
    *,
    name: str,
    dataset: Dataset,
    config: dict[str, Any] | TrainConfig,
    owner: Any = None,
    selection: Selection | None = None,
    group: str = "",
    enqueue: bool = True,
) -> Run:
    """Validate ``config``, create the run and its curriculum, and enqueue its training once
    the transaction commits. The run's output directory is its own under
    ``WRITING_RL_RUNS_DIR``, whatever ``config.output_dir`` said."""
    train_config = _config(config)
    train_config.logging_dir = None  # the studio sets it below, inside the run's directory
    try:
        check_train_config(train_config)
    except ConfigRefused as error:
        raise RunConfigError(str(error)) from None
    if selection is not None and selection.dataset_id != dataset.pk:
        raise RunConfigError(f"selection {selection.pk} belongs to another dataset")
    samples = training_instruction_ids(dataset=dataset, selection=selection)
    if not samples:
        raise RunConfigError(
            f"dataset {dataset.name!r} has no training instruction with a tiered reference"
            + (" among the selection's chosen ones" if selection is not None else "")
            + "; import references or generate and order them first"
        )
    run = Run.objects.create(
        name=name.strip() or f"run on {dataset.name}",
        dataset=dataset,
        selection=selection,
        owner=owner if getattr(owner, "is_authenticated", False) else None,
        total_steps=train_config.max_steps,
        group=group,
        task_id=str(uuid.uuid4()),
    )
    # The folder belongs to this run: its name carries the run's task id (unique across
    # databases), so a fresh run never resumes from another database's ``run-<id>/``.
    output_dir = Path(settings.WRITING_RL_RUNS_DIR) / f"run-{run.pk}-{run.task_id[:8]}"
    if output_dir.exists() and any(output_dir.iterdir()):
        raise RunConfigError(f"{output_dir} already exists and is not empty; refusing to reuse it")
    train_config.output_dir = str(output_dir)
    # So is the folder report_to writes into (TensorBoard events, offline W&B runs).
    report_to = train_config.report_to
    train_config.logging_dir = str(output_dir / report_to) if report_to != "none" else None
    run.config = train_config.to_dict()
    run.output_dir = str(output_dir)
    run.save(update_fields=["config", "output_dir"])
    curriculum_initialize(run=run, num_tiers=samples)
    if train_config.judge_check_override:
        AuditLog.objects.create(
            actor=run.owner,
            action="judge_check_override",
            run=run,
            details={"judge_check_pairs": train_config.judge_check_pairs},
        )
    if enqueue:
        run_enqueue(run=run)
    return run


def _send_run(run: Run) -> None:
    send(TaskName.TRAIN_RUN, args=[run.pk], task_id=run.task_id or str(uuid.uuid4()))


def _audit_run(run: Run, action: str, details: dict[str, Any]) -> None:
    details = {**details, "step": run.current_step}
    AuditLog.objects.create(action=f"run_{action}", run=run, details=details)


RUN_KIND = JobKind(
    name="run",
    model=Run,
    waiting=(Run.Status.QUEUED,),
    running=(Run.Status.RUNNING,),
    cancelled=Run.Status.CANCELLED,
    send=_send_run,
    audit=_audit_run,
)


def run_enqueue(*, run: Run) -> None:
    """Send the run's training task when the current transaction commits (a failed send
    leaves the run queued for the sweep to send)."""
    enqueue_on_commit(RUN_KIND, run)


def run_claim(run_id: int, *, worker: str = "") -> Lease | None:
    """Take the run for this worker: its :class:`Lease` only if this call took it.

    A queued run is claimed; so is a running run whose heartbeat is older than
    ``STALE_AFTER`` (its worker is gone; the caller resumes from the last checkpoint). A lost
    run that was asked to stop ends ``cancelled`` instead of running again.
    """
    return lease_claim(Run, run_id, worker=worker)


def runs_recover_stale(*, now: datetime | None = None) -> StaleSweep:
    """Send the task of every run whose worker was lost, or whose message may be lost, again
    (see :func:`~webapp.studio.services.leases.sweep_kind`); each send is in the audit log.
    Without this a run whose machine died would wait for the broker's visibility timeout."""
    return sweep_kind(RUN_KIND, now=now)


def run_heartbeat(run_id: int, *, worker: str = "") -> bool:
    """Mark the run alive; False when the run is no longer held by ``worker`` (taken over)."""
    return lease_heartbeat(Run, run_id, worker=worker)


def run_finish(
    *,
    run_id: int,
    status: str,
    error: str = "",
    worker: str = "",
    steps: int | None = None,
    lease: Lease | None = None,
    output_dir: str | None = None,
) -> bool:
    """Record how a running run ended (succeeded, failed or cancelled); conditional on the
    lease (``lease``, or the one ``worker`` holds now): False, writing nothing, otherwise.

    A run whose judgments all came back without a verdict trained on nothing: it is recorded
    as failed, with that reason, whatever the trainer said.
    """
    if status not in {Run.Status.SUCCEEDED, Run.Status.FAILED, Run.Status.CANCELLED}:
        raise ValueError(f"a run cannot finish as {status!r}")
    if status == Run.Status.SUCCEEDED:
        counts = Judgment.objects.filter(run_id=run_id).aggregate(
            total=Count("id"), invalid=Count("id", filter=Q(verdict=Judgment.Verdict.INVALID))
        )
        if counts["total"] and counts["invalid"] == counts["total"]:
            status = Run.Status.FAILED
            error = (
                f"none of the run's {counts['total']} judgments gave a verdict (invalid rate "
                "100%): it trained on no reward. Check the judge (endpoint, model, prompt) "
                "and resume the run from its last checkpoint."
            )
    fields: dict[str, Any] = {"error": error, "finished_at": timezone.now(), "judge_wait": {}}
    if status == Run.Status.SUCCEEDED:
        fields["progress"] = 1.0
    if steps is not None:
        fields["current_step"] = steps
    if output_dir is not None:
        fields["output_dir"] = output_dir
    if lease is None and worker:
        lease = lease_of(Run, run_id, worker=worker)
    if lease is not None:
        return lease.finish(status, **fields)
    if worker:
        return False
    return (
        Run.objects.filter(pk=run_id, status=Run.Status.RUNNING).update(status=status, **fields)
        == 1
    )


@transaction.atomic
def run_cancel(*, run: Run, user: Any = None) -> Run:
    """Cancel a run: a queued run ends at once; a running one is asked to stop after its
    current step (it checkpoints first). Finished runs are left as they are."""
    run = Run.objects.select_for_update().get(pk=run.pk)
    before = run.status
    if run.status == Run.Status.QUEUED:
        run.status = Run.Status.CANCELLED
        run.cancel_requested = True
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "cancel_requested", "finished_at"])
    elif run.status == Run.Status.RUNNING:
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested"])
    else:
        return run
    AuditLog.objects.create(
        actor=user if getattr(user, "is_authenticated", False) else None,
        action="run_cancel",
        run=run,
        details={"status_before": before},
    )
    return run


@transaction.atomic
def run_resume(*, run: Run, user: Any = None) -> Run:
    """Queue a failed or cancelled run again: the worker that claims it rolls it back to its
    last complete checkpoint and trains on from there (from the start without one). Other
    runs are left as they are."""
    run = Run.objects.select_for_update().get(pk=run.pk)
    if run.status not in (Run.Status.FAILED, Run.Status.CANCELLED):
        return run
    before, error = run.status, run.error
    last = run.checkpoints.order_by("-step").values_list("step", flat=True).first()
    run.status = Run.Status.QUEUED
    run.error = ""
    run.cancel_requested = False
    run.finished_at = None
    run.judge_wait = {}
    run.save(update_fields=["status", "error", "cancel_requested", "finished_at", "judge_wait"])
    AuditLog.objects.create(
        actor=user if getattr(user, "is_authenticated", False) else None,
        action="run_resume",
        run=run,
        details={"status_before": before, "error_before": error[-1000:], "from_step": last or 0},
    )
    run_enqueue(run=run)
    return run


class LiveReferences(list[str]):
    """One instruction's references by tier, as the engine reads them, that also finds a tier
    added while the run trains (a researcher adding a stronger reference mid-run): an index
    past the end looks the new tiers up once instead of failing."""

    def __init__(self, instruction_id: int, texts: list[str]) -> None:
        super().__init__(texts)
        self.instruction_id = instruction_id

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int) and index >= len(self):
            newer = Reference.objects.filter(
                instruction_id=self.instruction_id, tier__gte=len(self)
            ).order_by("tier")
            for tier, text in newer.values_list("tier", "text"):
                if tier == len(self):
                    self.append(text)
        return super().__getitem__(index)


def run_training_instructions(*, run: Run) -> list[TrainingInstruction]:
    """The engine's view of the run's samples: prompt, references by tier, criteria."""
    instruction_ids = CurriculumState.objects.filter(run=run).values_list("instruction_id")
    instructions = (
        Instruction.objects.filter(pk__in=instruction_ids)
        .order_by("id")
        .prefetch_related(
            Prefetch(
                "references",
                queryset=Reference.objects.filter(tier__isnull=False).order_by("tier"),
                to_attr="tiered",
            )
        )
    )
    return [
        TrainingInstruction(
            sample_id=str(instruction.pk),
            prompt=instruction.prompt,
            references=LiveReferences(
                instruction.pk, [reference.text for reference in instruction.tiered]
            ),
            criteria=criteria_text(instruction.criteria),
            required_words=instruction.required_words,
        )
        for instruction in instructions
    ]
