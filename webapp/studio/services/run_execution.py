"""Training a run on this worker: roll back to the last complete checkpoint, train with the
database as curriculum store and reporter, record how it ended.

``run_train`` is what the training task does (``webapp.studio.tasks.train_run``): the claim
(see :func:`~webapp.studio.services.runs.run_claim`) makes sure only one copy ever trains a
run; a re-delivered message finds the run running (heartbeat fresh) or finished and does
nothing, and a run whose worker died (heartbeat stale) is taken over and resumed from its last
checkpoint.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from django.db import transaction
from django.db.models import Count, Q

from rl_engine.training import JudgeOutageError, TrainConfig, train
from rl_engine.training.checkpoint import latest_checkpoint, read_curriculum
from webapp.studio.models import (
    Checkpoint,
    CurriculumState,
    CurriculumTransition,
    Judgment,
    Run,
    StepMetric,
)
from webapp.studio.paths import ConfigRefused, check_train_config
from webapp.studio.selectors import run_rollout_judgments
from webapp.studio.services import run_files
from webapp.studio.services.curriculum_store import DjangoCurriculumStore
from webapp.studio.services.judge_check import judge_check_before_run
from webapp.studio.services.leases import LeaseLost, lease_of
from webapp.studio.services.reporter import DjangoReporter
from webapp.studio.services.run_log import run_log_capture
from webapp.studio.services.runs import run_claim, run_finish, run_training_instructions

log = logging.getLogger(__name__)


def run_roll_back_to_checkpoint(run_id: int, run_dir: str, store: Any, lease: Any = None) -> int:
    """Before a (re)start: forget what happened after the last complete checkpoint.

    Steps past the checkpoint were lost with the worker and will run again, so their metrics,
    judgments, training transitions and checkpoint rows go, and the curriculum counters are
    recounted from the judgments that remain (always: a lost worker may have recorded a
    step's outcomes but not its judgments). Returns the checkpoint's step (0 when there is
    none: the curriculum starts over; with one, the trainer restores its tiers). With
    ``lease`` it all happens in one fenced transaction.
    """
    checkpoint = latest_checkpoint(run_dir) if os.path.isdir(run_dir) else None
    step = read_curriculum(checkpoint)[0] if checkpoint is not None else 0
    with lease.fenced() if lease is not None else nullcontext(), transaction.atomic():
        if checkpoint is None:
            store.restore({})
        StepMetric.objects.filter(run_id=run_id, step__gt=step).delete()
        Judgment.objects.filter(run_id=run_id, step__gt=step).delete()
        Checkpoint.objects.filter(run_id=run_id, step__gt=step).delete()
        CurriculumTransition.objects.filter(
            run_id=run_id, step__gt=step, cause=CurriculumTransition.Cause.TRAINING
        ).delete()
        # One row per rollout: with both orders judged a rollout has two rows, one outcome.
        rollouts = run_rollout_judgments(Run.objects.get(pk=run_id))
        counts = {
            row["instruction_id"]: row
            for row in rollouts.values("instruction_id").annotate(
                wins=Count("id", filter=Q(verdict=Judgment.Verdict.WIN)),
                ties=Count("id", filter=Q(verdict=Judgment.Verdict.TIE)),
                losses=Count("id", filter=Q(verdict=Judgment.Verdict.LOSS)),
                invalid=Count("id", filter=Q(verdict=Judgment.Verdict.INVALID)),
                attempts=Count("step", distinct=True),
            )
        }
        states = list(CurriculumState.objects.filter(run_id=run_id))
        for state in states:
            row = counts.get(state.instruction_id, {})
            for name in ("wins", "ties", "losses", "invalid", "attempts"):
                setattr(state, name, row.get(name, 0))
        CurriculumState.objects.bulk_update(
            states, ["wins", "ties", "losses", "invalid", "attempts"], batch_size=500
        )
    return step


def run_execute(
    run_id: int,
    *,
    worker: str,
    wrap_reporter: Callable[[Any], Any] | None = None,
    lease: Any = None,
) -> dict[str, Any]:
    """Train a run this worker has claimed (``lease``, or the one ``worker`` holds now), and
    record how it ended.

    Every write is fenced by the lease: a worker taken over (its heartbeat went stale and
    another worker claimed the run) raises ``LeaseLost`` at its next report and writes
    nothing more. The attempt trains into its own folder; its checkpoints and final weights
    are promoted into the run's folder only while it holds the lease."""
    if lease is None:
        lease = lease_of(Run, run_id, worker=worker)
        if lease is None:
            return {"run": run_id, "claimed": False}
    run = Run.objects.get(pk=run_id)
    run_dir = run.output_dir
    if not run_dir:  # not made by the studio: no run page tails its log
        return _run_execute(run, run_dir, lease, wrap_reporter)
    # The run's own log (the run page's tail, which reads run.output_dir): this attempt's
    # file, written while it holds the lease.
    with run_log_capture(run_id, run_dir, lease):
        return _run_execute(run, run_dir, lease, wrap_reporter)


def _run_execute(
    run: Run,
    run_dir: str,
    lease: Any,
    wrap_reporter: Callable[[Any], Any] | None,
) -> dict[str, Any]:
    run_id = run.pk
    try:
        with lease.heartbeat():
            # Again here: the stored config may have been edited since the web app checked it
            # (its judge endpoint is resolved by name now, its paths checked against the roots).
            try:
                config = TrainConfig.from_dict(run.config)
            except (TypeError, ValueError) as error:
                raise ConfigRefused("config", str(error)) from None
            run_dir = run_dir or config.output_dir
            check_train_config(config)
            # Before the first step: a judge under the run's thresholds refuses the run.
            refused = judge_check_before_run(run=run, config=config)
            if refused:
                run_finish(run_id=run_id, status=Run.Status.FAILED, error=refused, lease=lease)
                log.warning("run %s: %s", run_id, refused)
                return {"run": run_id, "claimed": True, "status": "failed", "error": refused}
            store = DjangoCurriculumStore(run, lease=lease)
            resumed_at = run_roll_back_to_checkpoint(run_id, run_dir, store, lease)
            reporter: Any = DjangoReporter(
                run,
                total_steps=config.max_steps,
                lease=lease,
                run_dir=run_dir,
                keep_checkpoints=config.keep_checkpoints,
            )
            if wrap_reporter is not None:
                reporter = wrap_reporter(reporter)
            instructions = run_training_instructions(run=run)
            log.info(
                "run %s: training %d instructions from step %d (attempt %s)",
                run_id, len(instructions), resumed_at, lease.token,
            )  # fmt: skip
            config.output_dir = str(run_files.attempt_dir(run_dir, lease.token))
            resume = latest_checkpoint(run_dir) if os.path.isdir(run_dir) else None
            result = train(config, instructions, store, reporter, resume_from=resume)
    except LeaseLost as error:
        log.warning("run %s: %s; this worker stops and writes nothing more", run_id, error)
        return {"run": run_id, "claimed": True, "status": "lease_lost", "error": str(error)}
    except Exception as error:
        if isinstance(error, JudgeOutageError):
            detail = f"waiting for judge: {error}"  # the reason, without a traceback
        elif isinstance(error, ConfigRefused):
            detail = f"refused: {error}"
        else:
            detail = "".join(traceback.format_exception(error)[-6:])
        cancelled = Run.objects.filter(pk=run_id, cancel_requested=True).exists()
        status = Run.Status.CANCELLED if cancelled else Run.Status.FAILED
        # Logged first: the run's log takes no more lines once the lease ends.
        log.exception("run %s ended: %s", run_id, status)
        run_finish(run_id=run_id, status=status, error=detail[-4000:], lease=lease)
        return {"run": run_id, "claimed": True, "status": status, "error": str(error)}
    cancelled = result.stopped and Run.objects.filter(pk=run_id, cancel_requested=True).exists()
    status = Run.Status.CANCELLED if cancelled else Run.Status.SUCCEEDED
    log.info("run %s: trained %d steps; recording it %s", run_id, result.steps, status)
    finished = False
    try:
        with lease.fenced():
            if result.model_dir and os.path.isdir(result.model_dir):
                run_files.promote(result.model_dir, run_dir)
            finished = run_finish(
                run_id=run_id, status=status, steps=result.steps, lease=lease, output_dir=run_dir
            )
    except LeaseLost as error:
        log.warning("run %s: %s; not recording its end", run_id, error)
    if not finished:
        return {"run": run_id, "claimed": True, "status": "lease_lost"}
    run_files.attempts_clean(run_dir)
    # run_finish refuses "succeeded" for a run none of whose judgments gave a verdict.
    if Run.objects.filter(pk=run_id, status=Run.Status.FAILED).exists():
        status = Run.Status.FAILED
    return {
        "run": run_id,
        "claimed": True,
        "status": status,
        "steps": result.steps,
        "resumed_from": result.resumed_from,
    }


def run_train(run_id: int, *, worker: str) -> dict[str, Any]:
    """Claim run ``run_id`` for ``worker`` and train it; a run someone else holds or that
    ended is skipped."""
    lease = run_claim(run_id, worker=worker)
    if lease is None:
        log.info("run %s: not claimed (running elsewhere, finished or cancelled)", run_id)
        return {"run": run_id, "claimed": False}
    return run_execute(run_id, worker=worker, lease=lease)
