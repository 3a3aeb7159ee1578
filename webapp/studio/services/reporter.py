"""Training progress into the database: ``rl_engine.training.Reporter`` with the ORM.

Curriculum transitions are not written here: ``DjangoCurriculumStore`` writes them in the
same transaction as the move itself, so the history can never disagree with the tiers.
Write failures are logged, never raised: a dashboard hiccup must not kill a training run.
With a lease (``webapp.studio.services.leases``), every write is fenced: a worker that lost
the run (taken over after its heartbeat went stale, or the run finished) raises
:class:`~webapp.studio.services.leases.LeaseLost` from its next report and writes nothing;
its checkpoints are promoted from the attempt's folder into the run's only while it holds
the lease (``webapp.studio.services.run_files``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import timedelta

from django.db import DatabaseError, connection
from django.utils import timezone

from rl_engine.curriculum import Transition
from rl_engine.training import CheckpointInfo, JudgeWait, JudgmentRecord, StepMetrics
from rl_engine.training.checkpoint import checkpoint_step
from webapp.studio.models import Checkpoint, Run, StepMetric
from webapp.studio.services.judgments import judgments_store
from webapp.studio.services.leases import Lease

log = logging.getLogger(__name__)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _drop_broken_connection() -> None:
    # A lost database connection stays broken until closed; the next query reconnects.
    if not connection.in_atomic_block:
        connection.close()


class DjangoReporter:
    """Reports one run's steps, judgments and checkpoints; stops when a cancel is requested.

    ``should_stop`` reads one boolean column, at most every ``poll_s`` seconds.
    """

    def __init__(
        self,
        run: Run | int,
        *,
        total_steps: int | None = None,
        poll_s: float = 1.0,
        lease: Lease | None = None,
        run_dir: str | None = None,
        keep_checkpoints: int | None = None,
    ):
        self.run_id = run.pk if isinstance(run, Run) else int(run)
        self.lease = lease
        # With a lease: checkpoints are promoted from the attempt's folder into ``run_dir``.
        self.run_dir = run_dir
        self.keep_checkpoints = keep_checkpoints
        if total_steps is None:
            total_steps = Run.objects.values_list("total_steps", flat=True).get(pk=self.run_id)
        self.total_steps = max(int(total_steps or 0), 0)
        self.poll_s = poll_s
        self._last_poll = 0.0
        self._stop = False
        self.transitions_seen = 0

    @contextmanager
    def _fenced(self) -> Iterator[None]:
        """A transaction in which this worker holds the run (no-op without a lease)."""
        with self.lease.fenced() if self.lease is not None else nullcontext():
            yield

    def _safely(self, what: str, write) -> None:  # type: ignore[no-untyped-def]
        try:
            with self._fenced():
                write()
        except DatabaseError:
            log.exception("run %s: could not record %s", self.run_id, what)
            _drop_broken_connection()

    def on_step(self, metrics: StepMetrics) -> None:
        def write() -> None:
            StepMetric.objects.update_or_create(
                run_id=self.run_id,
                step=metrics.step,
                defaults={"metrics": dataclasses.asdict(metrics)},
            )
            progress = min(metrics.step / self.total_steps, 1.0) if self.total_steps else 0.0
            Run.objects.filter(pk=self.run_id).update(
                current_step=metrics.step, progress=progress, heartbeat_at=timezone.now()
            )

        self._safely(f"step {metrics.step}", write)
        log.info(
            "run %s: step %d/%d · win %s tie %s loss %s invalid %s · loss %s · %.1f s",
            self.run_id, metrics.step, self.total_steps, _rate(metrics.win_rate),
            _rate(metrics.tie_rate), _rate(metrics.loss_rate), _rate(metrics.invalid_rate),
            "—" if metrics.loss is None else f"{metrics.loss:.4g}", metrics.step_seconds or 0.0,
        )  # fmt: skip

    def on_judgments(self, judgments: Sequence[JudgmentRecord]) -> None:
        if judgments:
            self._safely(
                f"{len(judgments)} judgments",
                lambda: judgments_store(run_id=self.run_id, records=judgments),
            )

    def on_judge_wait(self, wait: JudgeWait | None) -> None:
        """Show on the run page that a step waits for the judge (None: it no longer does)."""

        def write() -> None:
            if wait is None:
                Run.objects.filter(pk=self.run_id).update(judge_wait={})
                return
            state = dataclasses.asdict(wait)
            state["since"] = (timezone.now() - timedelta(seconds=wait.waited_s)).isoformat()
            Run.objects.filter(pk=self.run_id).update(judge_wait=state, heartbeat_at=timezone.now())

        self._safely("the judge wait", write)

    def on_transitions(self, transitions: Sequence[Transition]) -> None:
        # Already in CurriculumTransition (written by the store with the move).
        self.transitions_seen += len(transitions)

    def on_checkpoint(self, checkpoint: CheckpointInfo) -> None:
        from webapp.studio.services import run_files

        def write() -> None:
            path = checkpoint.path
            if self.run_dir is not None:
                path = str(run_files.promote(checkpoint.path, self.run_dir))
            Checkpoint.objects.update_or_create(
                run_id=self.run_id,
                step=checkpoint.step,
                defaults={"path": path, "metadata": {"samples": len(checkpoint.tiers)}},
            )
            if self.run_dir is not None:
                # Checkpoints that evaluations or campaigns use are never rotated away; the
                # ones deleted are marked so that no form offers them again.
                pinned = Checkpoint.objects.filter(run_id=self.run_id).filter(Checkpoint.pinned_q())
                protect = {str(path) for path in pinned.values_list("path", flat=True)}
                removed = run_files.rotate(self.run_dir, self.keep_checkpoints, protect=protect)
                steps = [s for s in (checkpoint_step(p) for p in removed) if s is not None]
                if steps:
                    Checkpoint.objects.filter(run_id=self.run_id, step__in=steps).update(
                        deleted=True
                    )

        self._safely(f"checkpoint {checkpoint.step}", write)
        log.info("run %s: checkpoint at step %d saved", self.run_id, checkpoint.step)

    def pinned_steps(self) -> set[int] | None:
        """Steps of this run's checkpoints that evaluations or campaigns use: the checkpoint
        rotation keeps them on disk. None when the database cannot say (nothing is deleted)."""
        try:
            return set(
                Checkpoint.objects.filter(run_id=self.run_id)
                .filter(Checkpoint.pinned_q())
                .values_list("step", flat=True)
            )
        except DatabaseError:
            log.exception("run %s: could not read pinned checkpoints; keeping all", self.run_id)
            _drop_broken_connection()
            return None

    def on_checkpoints_removed(self, steps: Sequence[int]) -> None:
        def write() -> None:
            Checkpoint.objects.filter(run_id=self.run_id, step__in=list(steps)).update(deleted=True)

        self._safely(f"{len(steps)} removed checkpoint(s)", write)

    def should_stop(self) -> bool:
        if self.lease is not None:
            self.lease.check()  # a lost lease stops the run at once: LeaseLost
        now = time.monotonic()
        if self._stop or now - self._last_poll < self.poll_s:
            return self._stop
        self._last_poll = now
        try:
            self._stop = Run.objects.filter(pk=self.run_id, cancel_requested=True).exists()
        except DatabaseError:
            log.exception("run %s: could not read cancel_requested", self.run_id)
            _drop_broken_connection()
        return self._stop
