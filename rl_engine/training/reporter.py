"""Where training reports to: the ``Reporter`` protocol and an in-memory implementation.

The web app implements the protocol with the ORM; tests and notebooks use
:class:`InMemoryReporter`. Beyond the protocol, a reporter may define ``on_judge_wait(wait)``:
it is called with a :class:`JudgeWait` while a step is held for the judge, and with None when
the hold ends (``on_resume(CheckpointInfo)`` is the other optional method). Reporters are
called from the training loop's thread, one call per event batch, and must not raise for
ordinary data (a failed write should be logged, not stop a run).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from rl_engine.curriculum import Transition
from rl_engine.training.types import CheckpointInfo, JudgeWait, JudgmentRecord, StepMetrics


@runtime_checkable
class Reporter(Protocol):
    """Receives what a training run produces, and may ask it to stop."""

    def on_step(self, metrics: StepMetrics) -> None:
        """One optimizer step finished."""
        ...

    def on_judgments(self, judgments: Sequence[JudgmentRecord]) -> None:
        """All judgments of one step, in one call."""
        ...

    def on_transitions(self, transitions: Sequence[Transition]) -> None:
        """Curriculum moves made by one step (may be empty)."""
        ...

    def on_checkpoint(self, checkpoint: CheckpointInfo) -> None:
        """A complete checkpoint was written."""
        ...

    def should_stop(self) -> bool:
        """True asks the run to stop after the current step (it saves a checkpoint first)."""
        ...


class InMemoryReporter:
    """Keeps everything in lists; ``stop()`` (from any thread) or ``stop_after_step`` ends a run."""

    def __init__(self, stop_after_step: int | None = None) -> None:
        self.steps: list[StepMetrics] = []
        self.judgments: list[JudgmentRecord] = []
        self.transitions: list[Transition] = []
        self.checkpoints: list[CheckpointInfo] = []
        self.judge_waits: list[JudgeWait | None] = []
        self.stop_after_step = stop_after_step
        self._stop = threading.Event()

    def on_step(self, metrics: StepMetrics) -> None:
        self.steps.append(metrics)

    def on_judgments(self, judgments: Sequence[JudgmentRecord]) -> None:
        self.judgments.extend(judgments)

    def on_transitions(self, transitions: Sequence[Transition]) -> None:
        self.transitions.extend(transitions)

    def on_checkpoint(self, checkpoint: CheckpointInfo) -> None:
        self.checkpoints.append(checkpoint)

    def on_judge_wait(self, wait: JudgeWait | None) -> None:
        self.judge_waits.append(wait)

    def stop(self) -> None:
        self._stop.set()

    def should_stop(self) -> bool:
        reached = self.stop_after_step is not None and bool(self.steps)
        if reached and self.steps[-1].step >= (self.stop_after_step or 0):
            return True
        return self._stop.is_set()
