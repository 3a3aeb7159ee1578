"""The reward function TRL calls once per step: pairwise judging against the current reference.

TRL (GRPOTrainer / RLOOTrainer 1.16) calls ``reward(prompts, completions, completion_ids,
**dataset_columns, trainer_state, log_metric, ...)`` with every dataset column repeated once
per generation, and expects one reward per rollout, ``None`` where none can be given. Here:

1. the sample ids come from the ``sample_id`` column;
2. the current tiers are read once for the step (``scheduler.current_tiers``);
3. every rollout of the step is judged against its sample's current-tier reference in one
   concurrent batch (``PairwiseReward.score_sync``);
4. the pairwise reward (1 / 0.5 / 0, None when the judge gave no usable verdict) plus the
   weighted extra terms is returned; a None pairwise reward stays None;
5. each sample's outcome is recorded once with ``scheduler.record_step`` (the pairwise term
   only), and judgments and transitions go to the reporter.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rl_engine.curriculum import ReferenceScheduler, Transition
from rl_engine.reward import PairwiseReward, PointwiseReward, RewardRequest
from rl_engine.text import count_words, length_score, repetition_rate
from rl_engine.training.reporter import Reporter
from rl_engine.training.types import JudgmentRecord, TrainingInstruction


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a list of chat messages (conversational)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        parts = []
        for message in completion:
            content = message.get("content", "") if isinstance(message, Mapping) else message
            if isinstance(content, list):  # content blocks
                content = "".join(str(b.get("text", "")) for b in content if isinstance(b, Mapping))
            parts.append(str(content))
        return "".join(parts)
    return str(completion)


def _length_term(instruction: TrainingInstruction, text: str) -> float:
    if instruction.required_words is None:
        return 0.0
    return length_score(instruction.required_words, count_words(text)) / 100.0


def _repetition_term(instruction: TrainingInstruction, text: str) -> float:
    return -repetition_rate(text)


EXTRA_TERMS: dict[str, Callable[[TrainingInstruction, str], float]] = {
    "length": _length_term,
    "repetition": _repetition_term,
}


@dataclass
class StepRewardStats:
    """What one step's reward call saw; the metrics callback turns it into StepMetrics."""

    step: int
    rewards: list[float | None] = field(default_factory=list)
    pairwise: list[float | None] = field(default_factory=list)
    completion_words: list[int] = field(default_factory=list)
    judge_seconds: float = 0.0
    judge_latencies: list[float] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    extra_means: dict[str, float] = field(default_factory=dict)

    def rate(self, value: float | None) -> float:
        if not self.pairwise:
            return 0.0
        return sum(1 for r in self.pairwise if r == value) / len(self.pairwise)

    @property
    def invalid_rate(self) -> float:
        if not self.pairwise:
            return 0.0
        return sum(1 for r in self.pairwise if r is None) / len(self.pairwise)

    def reward_mean_std(self) -> tuple[float | None, float | None]:
        valid = [r for r in self.rewards if r is not None]
        if not valid:
            return None, None
        return statistics.fmean(valid), statistics.pstdev(valid)


class PairwiseRewardFunction:
    """Callable TRL reward function; one instance per run.

    ``step_offset`` maps TRL's ``trainer_state.global_step`` (steps completed) to the step
    being scored: ``global_step + 1``, so step numbers are 1-based everywhere (metrics,
    curriculum records, checkpoint-<step> directories).
    """

    __name__ = "writing_rl_pairwise"

    def __init__(
        self,
        instructions: Mapping[str, TrainingInstruction],
        scheduler: ReferenceScheduler,
        pairwise: PairwiseReward | PointwiseReward,
        reporter: Reporter,
        reward_terms: Mapping[str, float] | None = None,
    ) -> None:
        self.instructions = dict(instructions)
        self.scheduler = scheduler
        self.pairwise = pairwise
        self.reporter = reporter
        self.reward_terms = dict(reward_terms or {})
        unknown = set(self.reward_terms) - set(EXTRA_TERMS)
        if unknown:
            raise ValueError(
                f"unknown reward terms {sorted(unknown)}; known: {sorted(EXTRA_TERMS)}"
            )
        self._lock = threading.Lock()
        self._stats: dict[int, StepRewardStats] = {}
        self._calls = 0

    def pop_stats(self, step: int) -> StepRewardStats | None:
        """The stats of ``step`` (once); older unclaimed steps are dropped."""
        with self._lock:
            stats = self._stats.pop(step, None)
            for old in [s for s in self._stats if s < step]:
                del self._stats[old]
            return stats

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Any] | None = None,
        *,
        sample_id: Sequence[str] | None = None,
        trainer_state: Any = None,
        **_: Any,
    ) -> list[float | None]:
        if sample_id is None:
            raise ValueError(
                "the training dataset has no 'sample_id' column; TRL passes dataset columns to "
                "the reward function and the curriculum needs the ids"
            )
        if len(sample_id) != len(completions):
            raise ValueError(f"got {len(sample_id)} sample ids for {len(completions)} completions")
        if trainer_state is not None:
            step = int(trainer_state.global_step) + 1
        else:
            self._calls += 1
            step = self._calls
        return self.score_step(step, list(sample_id), [completion_text(c) for c in completions])

    def score_step(
        self, step: int, sample_ids: Sequence[str], rollouts: Sequence[str]
    ) -> list[float | None]:
        """Judge one step's rollouts, record the curriculum outcome, return total rewards."""
        unique_ids = list(dict.fromkeys(sample_ids))
        tiers = self.scheduler.current_tiers(unique_ids, step)
        requests = []
        for sid, text in zip(sample_ids, rollouts, strict=True):
            instruction = self.instructions[sid]
            requests.append(
                RewardRequest(
                    sample_id=sid,
                    instruction=instruction.prompt,
                    rollout=text,
                    reference=instruction.references[tiers[sid]],
                    criteria=instruction.criteria,
                )
            )
        started = time.perf_counter()
        outcomes = self.pairwise.score_sync(requests)
        judge_seconds = time.perf_counter() - started

        stats = StepRewardStats(step=step, judge_seconds=judge_seconds)
        by_sample: dict[str, list[float | None]] = defaultdict(list)
        records: list[JudgmentRecord] = []
        extra_sums: dict[str, float] = defaultdict(float)
        for index, (sid, text, outcome) in enumerate(
            zip(sample_ids, rollouts, outcomes, strict=True)
        ):
            instruction = self.instructions[sid]
            # The standing against the reference (1 / 0.5 / 0 / None) drives the curriculum;
            # the base reward equals it for the pairwise reward, and is the normalized score
            # for the pointwise one.
            pairwise = outcome.comparison
            total: float | None = outcome.reward
            for name, weight in self.reward_terms.items():
                value = EXTRA_TERMS[name](instruction, text)
                extra_sums[name] += value
                if total is not None:
                    total += weight * value
            by_sample[sid].append(pairwise)
            stats.pairwise.append(pairwise)
            stats.rewards.append(total)
            stats.completion_words.append(count_words(text))
            for judgment, position in zip(
                outcome.judgments, outcome.policy_positions, strict=False
            ):
                stats.judge_latencies.append(judgment.latency_s)
                records.append(
                    JudgmentRecord(
                        sample_id=sid,
                        step=step,
                        rollout_index=index,
                        rollout=text,
                        reference_tier=tiers[sid],
                        verdict=judgment.verdict.value,
                        reward=pairwise,
                        total_reward=total,
                        position=position,
                        rationale=judgment.rationale,
                        judge=judgment.judge,
                        latency_s=judgment.latency_s,
                        error=judgment.error,
                        cached=judgment.cached,
                    )
                )
        if rollouts:
            stats.extra_means = {k: v / len(rollouts) for k, v in extra_sums.items()}
        # One record per sample per step: the store ignores a replayed step, so a retried
        # generation can never move a sample twice.
        stats.transitions = self.scheduler.record_step(step, dict(by_sample))
        self.reporter.on_judgments(records)
        self.reporter.on_transitions(stats.transitions)
        with self._lock:
            self._stats[step] = stats
        return stats.rewards
