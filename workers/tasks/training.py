"""The training task: claim a run, train it with the database as curriculum and reporter.

``acks_late`` + ``reject_on_worker_lost``: the broker keeps the message until the task ends,
so a worker lost mid-run gets the message re-delivered. The claim (see
``webapp.studio.services.runs.run_claim``) makes sure only one copy ever trains a run: a
re-delivered message finds the run running (heartbeat fresh) or finished and does nothing; a
run whose worker died (heartbeat stale) is taken over and resumed from its last checkpoint.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from typing import Any

from celery import shared_task

from workers.tasks.heartbeat import Heartbeat, worker_name

log = logging.getLogger(__name__)


def _roll_back_to_checkpoint(run_id: int, output_dir: str, store: Any) -> int:
    """Before a (re)start: forget what happened after the last complete checkpoint.

    Steps past the checkpoint were lost with the worker and will run again, so their metrics,
    judgments and checkpoint rows go, and the curriculum counters are recounted from the
    judgments that remain. Returns the checkpoint's step (0 when there is none: the
    curriculum starts over; with one, the trainer restores its tiers).
    """
    from django.db.models import Count, Q

    from rl_engine.training.checkpoint import latest_checkpoint, read_curriculum
    from webapp.studio.models import Checkpoint, CurriculumState, Judgment, StepMetric

    checkpoint = latest_checkpoint(output_dir) if os.path.isdir(output_dir) else None
    step = read_curriculum(checkpoint)[0] if checkpoint is not None else 0
    if checkpoint is None:
        store.restore({})
    removed = StepMetric.objects.filter(run_id=run_id, step__gt=step).delete()[0]
    removed += Judgment.objects.filter(run_id=run_id, step__gt=step).delete()[0]
    Checkpoint.objects.filter(run_id=run_id, step__gt=step).delete()
    if removed:
        counts = {
            row["instruction_id"]: row
            for row in Judgment.objects.filter(run_id=run_id)
            .values("instruction_id")
            .annotate(
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


def execute_run(
    run_id: int, *, worker: str, wrap_reporter: Callable[[Any], Any] | None = None
) -> dict[str, Any]:
    """Train a run this worker has claimed, and record how it ended."""
    from rl_engine.training import JudgeOutageError, TrainConfig, train
    from webapp.studio.models import Run
    from webapp.studio.paths import check_train_config
    from webapp.studio.services.curriculum_store import DjangoCurriculumStore
    from webapp.studio.services.reporter import DjangoReporter
    from webapp.studio.services.runs import (
        run_finish,
        run_heartbeat,
        run_training_instructions,
    )

    run = Run.objects.get(pk=run_id)
    heartbeat = Heartbeat(f"run-{run_id}", lambda: run_heartbeat(run_id, worker=worker))
    heartbeat.start()
    try:
        config = TrainConfig.from_dict(run.config)
        # Again here: the stored config may have been edited since the web app checked it.
        check_train_config(config)
        store = DjangoCurriculumStore(run)
        resumed_at = _roll_back_to_checkpoint(run_id, config.output_dir, store)
        reporter: Any = DjangoReporter(run, total_steps=config.max_steps)
        if wrap_reporter is not None:
            reporter = wrap_reporter(reporter)
        instructions = run_training_instructions(run=run)
        log.info(
            "run %s: training %d instructions from step %d", run_id, len(instructions), resumed_at
        )
        result = train(config, instructions, store, reporter, resume_from=True)
    except Exception as error:
        if isinstance(error, JudgeOutageError):
            detail = f"waiting for judge: {error}"  # the reason, without a traceback
        else:
            detail = "".join(traceback.format_exception(error)[-6:])
        cancelled = Run.objects.filter(pk=run_id, cancel_requested=True).exists()
        status = Run.Status.CANCELLED if cancelled else Run.Status.FAILED
        run_finish(run_id=run_id, status=status, error=detail[-4000:], worker=worker)
        log.exception("run %s ended: %s", run_id, status)
        return {"run": run_id, "claimed": True, "status": status, "error": str(error)}
    finally:
        heartbeat.done.set()
        heartbeat.join(timeout=5)
    cancelled = result.stopped and Run.objects.filter(pk=run_id, cancel_requested=True).exists()
    status = Run.Status.CANCELLED if cancelled else Run.Status.SUCCEEDED
    run_finish(run_id=run_id, status=status, worker=worker, steps=result.steps)
    # run_finish refuses "succeeded" for a run none of whose judgments gave a verdict.
    if Run.objects.filter(pk=run_id, status=Run.Status.FAILED).exists():
        status = Run.Status.FAILED
    Run.objects.filter(pk=run_id).update(output_dir=result.run_dir)
    return {
        "run": run_id,
        "claimed": True,
        "status": status,
        "steps": result.steps,
        "resumed_from": result.resumed_from,
    }


@shared_task(
    name="workers.tasks.training.train_run",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def train_run(self: Any, run_id: int) -> dict[str, Any]:
    """Claim run ``run_id`` and train it; a run someone else holds or that ended is skipped."""
    from webapp.studio.services.runs import run_claim

    worker = worker_name(self.request.id)
    if not run_claim(run_id, worker=worker):
        log.info("run %s: not claimed (running elsewhere, finished or cancelled)", run_id)
        return {"run": run_id, "claimed": False}
    return execute_run(run_id, worker=worker)
