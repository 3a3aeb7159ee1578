"""The trainer callback that turns TRL's loop into Reporter events, and the phase clock.

Per optimizer step it measures the wall time of the whole step, of generation (through
:class:`PhaseClock`, fed by the trainer's ``_generate``) and of judging (from the reward
function); the rest of the step is the update phase (log-probs, forward, backward, optimizer).
It reports StepMetrics after TRL's log of the step, writes the curriculum snapshot into every
checkpoint, and stops the run within one step when the reporter asks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from rl_engine.curriculum import CurriculumStore
from rl_engine.outcomes import Outcome
from rl_engine.training.checkpoint import rotate_checkpoints, write_checkpoint_extras
from rl_engine.training.reporter import Reporter
from rl_engine.training.reward_fn import PairwiseRewardFunction
from rl_engine.training.types import CheckpointInfo, StepMetrics


@dataclass
class PhaseClock:
    """Generation time and tokens since the last ``take()``."""

    rollout_seconds: float = 0.0
    rollout_tokens: int = 0
    prompt_tokens: int = 0

    def add(self, seconds: float, completion_tokens: int, prompt_tokens: int) -> None:
        self.rollout_seconds += seconds
        self.rollout_tokens += completion_tokens
        self.prompt_tokens += prompt_tokens

    def take(self) -> tuple[float, int, int]:
        taken = (self.rollout_seconds, self.rollout_tokens, self.prompt_tokens)
        self.rollout_seconds, self.rollout_tokens, self.prompt_tokens = 0.0, 0, 0
        return taken


class TimedGenerationMixin:
    """Mixed into a TRL trainer class: times ``_generate`` and counts its tokens."""

    phase_clock: PhaseClock

    def _generate(self, prompts: list[Any]) -> Any:
        started = time.perf_counter()
        output = super()._generate(prompts)  # type: ignore[misc]
        prompt_ids, completion_ids = output[0], output[1]
        self.phase_clock.add(
            time.perf_counter() - started,
            sum(len(ids) for ids in completion_ids),
            sum(len(ids) for ids in prompt_ids),
        )
        return output


def _float(logs: Mapping[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = logs.get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


class ReportingCallback(TrainerCallback):
    """Feeds a Reporter from the trainer loop (see the module docstring)."""

    def __init__(
        self,
        *,
        algorithm: str,
        reporter: Reporter,
        store: CurriculumStore,
        sample_ids: Sequence[str],
        config_dict: Mapping[str, Any],
        clock: PhaseClock,
        reward_fn: PairwiseRewardFunction | None = None,
        tokens_per_step: int | None = None,
    ) -> None:
        self.algorithm = algorithm
        self.reporter = reporter
        self.store = store
        self.sample_ids = list(sample_ids)
        self.config_dict = dict(config_dict)
        self.clock = clock
        self.reward_fn = reward_fn
        self.tokens_per_step = tokens_per_step
        states = store.read_tiers(self.sample_ids)
        self.tiers = {sid: state.tier for sid, state in states.items()}
        self.mastered = {sid for sid, state in states.items() if state.mastered}
        self.stopped = False
        self.history: list[StepMetrics] = []
        self.last_checkpoint: str | None = None
        self._step_started: float | None = None
        self._step_seconds = 0.0
        self._tokens_seen = 0

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        self._tokens_seen = int(state.num_input_tokens_seen or 0)

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        if self._step_started is None:
            self._step_started = time.perf_counter()

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        if self._step_started is not None:
            self._step_seconds = time.perf_counter() - self._step_started
        self._step_started = None
        self._check_stop(control)

    def _check_stop(self, control: TrainerControl) -> None:
        if not self.stopped and self.reporter.should_stop():
            # Stop after this step, and leave a checkpoint so the run can be resumed.
            self.stopped = True
            control.should_training_stop = True
            control.should_save = True

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> None:
        logs = logs or {}
        if "loss" not in logs or state.global_step in {m.step for m in self.history[-1:]}:
            return
        self.report_step(state, logs)
        # The trainer logs before it saves: a stop asked for while reporting still makes this
        # step's checkpoint and ends the run here.
        self._check_stop(control)

    def report_step(self, state: TrainerState, logs: Mapping[str, Any]) -> StepMetrics:
        step = state.global_step
        rollout_seconds, rollout_tokens, prompt_tokens = self.clock.take()
        metrics = StepMetrics(
            step=step,
            algorithm=self.algorithm,
            loss=_float(logs, "loss"),
            kl=_float(logs, "kl"),
            learning_rate=_float(logs, "learning_rate"),
            step_seconds=self._step_seconds,
            rollout_tokens=rollout_tokens,
            rollout_seconds=rollout_seconds,
        )
        judge_seconds = 0.0
        stats = self.reward_fn.pop_stats(step) if self.reward_fn is not None else None
        if stats is not None:
            for transition in stats.transitions:
                self.tiers[transition.sample_id] = transition.to_tier
                if transition.mastered:
                    self.mastered.add(transition.sample_id)
            metrics.reward_mean, metrics.reward_std = stats.reward_mean_std()
            valid = [r for r in stats.pairwise if r is not None]
            metrics.pairwise_reward_mean = sum(valid) / len(valid) if valid else None
            # Shares of the step's rollouts; None (unknown) when no rollout got a verdict.
            metrics.win_rate = stats.rate(Outcome.WIN)
            metrics.tie_rate = stats.rate(Outcome.TIE)
            metrics.loss_rate = stats.rate(Outcome.LOSS)
            metrics.invalid_rate = stats.invalid_rate
            metrics.judge_attempts = stats.judge_attempts
            metrics.judge_retries = stats.judge_retries
            metrics.judge_prompt_tokens = stats.judge_prompt_tokens
            metrics.judge_completion_tokens = stats.judge_completion_tokens
            metrics.rollouts = len(stats.pairwise)
            words = stats.completion_words
            metrics.mean_completion_words = sum(words) / len(words) if words else None
            judge_seconds = stats.judge_seconds
            metrics.judge_seconds = judge_seconds
            lat = stats.judge_latencies
            metrics.judge_latency_s = sum(lat) / len(lat) if lat else None
            metrics.extra = {f"term/{k}": v for k, v in stats.extra_means.items()}
        top = max(self.tiers.values(), default=0)
        histogram = [0] * (top + 1)
        for tier in self.tiers.values():
            histogram[tier] += 1
        metrics.tier_histogram = histogram
        metrics.mastered = len(self.mastered)
        if rollout_seconds > 0:
            metrics.rollout_tokens_per_s = rollout_tokens / rollout_seconds
        # The update phase processes every prompt and completion token (old/ref log-probs,
        # forward, backward); SFT counts the tokens the trainer saw.
        if self.reward_fn is not None:
            update_tokens = prompt_tokens + rollout_tokens
        else:
            seen = int(state.num_input_tokens_seen or 0)
            update_tokens = seen - self._tokens_seen or (self.tokens_per_step or 0)
            self._tokens_seen = seen
        update_seconds = max(self._step_seconds - rollout_seconds - judge_seconds, 0.0)
        metrics.update_tokens = update_tokens
        metrics.update_seconds = update_seconds
        if update_seconds > 0 and update_tokens:
            metrics.update_tokens_per_s = update_tokens / update_seconds
        for key in ("grad_norm", "entropy", "clip_ratio/region_mean"):
            value = _float(logs, key)
            if value is not None:
                metrics.extra[key] = value
        self.history.append(metrics)
        self.reporter.on_step(metrics)
        return metrics

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        path = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
        snapshot = self.store.snapshot()
        write_checkpoint_extras(
            path, step=state.global_step, config=self.config_dict, snapshot=snapshot
        )
        self.last_checkpoint = str(path)
        tiers = {sid: snapshot[sid].tier for sid in self.sample_ids if sid in snapshot}
        self.reporter.on_checkpoint(
            CheckpointInfo(step=state.global_step, path=str(path), tiers=tiers)
        )
        self.rotate(Path(str(args.output_dir)))

    def rotate(self, run_dir: Path) -> list[int]:
        """Keep ``keep_checkpoints`` checkpoints, never deleting one the reporter pins (its
        optional ``pinned_steps()``: checkpoints used by evaluations or annotation
        campaigns; None = cannot tell, delete nothing); tells the reporter what went
        (optional ``on_checkpoints_removed``)."""
        keep = self.config_dict.get("keep_checkpoints")
        if keep is None:
            return []
        pinned_steps = getattr(self.reporter, "pinned_steps", None)
        pinned = pinned_steps() if callable(pinned_steps) else set()
        if pinned is None:
            return []  # the reporter cannot tell what is in use: delete nothing this time
        removed = rotate_checkpoints(run_dir, int(keep), set(pinned))
        on_removed = getattr(self.reporter, "on_checkpoints_removed", None)
        if removed and callable(on_removed):
            on_removed(removed)
        return removed
