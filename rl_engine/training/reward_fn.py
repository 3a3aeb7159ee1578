"""The reward function TRL calls once per step: pairwise judging against the current reference.

TRL (GRPOTrainer / RLOOTrainer 1.16) calls ``reward(prompts, completions, completion_ids,
**dataset_columns, trainer_state, log_metric, ...)`` with every dataset column repeated once
per generation, and expects one reward per rollout, ``None`` where none can be given. Here:

1. the sample ids come from the ``sample_id`` column;
2. the current tiers are read once for the step (``scheduler.current_tiers``);
3. every rollout of the step is judged against its sample's current-tier reference in one
   concurrent batch (``PairwiseReward.score_sync``);
4. when the judge gives too few verdicts (the step's invalid rate above
   ``JudgeOutagePolicy.max_invalid_rate``, or none at all: the endpoint is down, or the model
   never answers in the verdict format), the step is held: the rollouts without a verdict are
   judged again with backoff until the outage budget is spent, the reporter showing "waiting
   for judge" with the last error; then :class:`JudgeOutageError` ends the run (its last
   checkpoint stays, so it can be resumed). An outage shorter than the budget loses no step;
5. the pairwise reward (1 / 0.5 / 0, None when the judge gave no usable verdict) plus the
   weighted extra terms is returned; a None pairwise reward stays None;
6. each sample's rollout outcomes (WIN / TIE / LOSS / INVALID) are recorded once with
   ``scheduler.record_step``, and judgments and transitions go to the reporter.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rl_engine.curriculum import ReferenceScheduler, Transition
from rl_engine.outcomes import Outcome, OutcomeCounts
from rl_engine.reward import PairwiseReward, PointwiseReward, RewardOutcome, RewardRequest
from rl_engine.text import count_words, length_score, repetition_rate
from rl_engine.training.reporter import Reporter
from rl_engine.training.types import JudgeWait, JudgmentRecord, TrainingInstruction

log = logging.getLogger(__name__)


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


class JudgeOutageError(RuntimeError):
    """The judge gave no usable verdicts for longer than the run's outage budget."""


@dataclass(frozen=True)
class JudgeOutagePolicy:
    """When a step is held for the judge, and for how long.

    A step is held when more than ``max_invalid_rate`` of its rollouts got no verdict, or none
    got one. The rollouts without a verdict are judged again after ``first_wait_s``, doubling up
    to ``max_wait_s``, until ``budget_s`` seconds have passed since the first failed try; then
    the run ends with :class:`JudgeOutageError`. ``budget_s=0`` fails at once.
    """

    max_invalid_rate: float = 0.5
    budget_s: float = 600.0
    first_wait_s: float = 5.0
    max_wait_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0 <= self.max_invalid_rate <= 1:
            raise ValueError(f"max_invalid_rate must be in [0, 1], got {self.max_invalid_rate}")
        if self.budget_s < 0:
            raise ValueError(f"the outage budget cannot be negative, got {self.budget_s}")
        if self.first_wait_s <= 0 or self.max_wait_s < self.first_wait_s:
            raise ValueError("need 0 < first_wait_s <= max_wait_s")

    def too_few_verdicts(self, counts: OutcomeCounts) -> bool:
        return bool(counts.total) and (
            counts.valid == 0 or (counts.invalid_rate or 0.0) > self.max_invalid_rate
        )


def _main_error(outcomes: Sequence[RewardOutcome]) -> str:
    """The most frequent error among the judgments of outcomes without a verdict."""
    errors = Counter(
        (judgment.error or "no verdict").strip()[:500]
        for outcome in outcomes
        if not outcome.outcome.valid
        for judgment in outcome.judgments
        if judgment.error or not judgment.verdict or judgment.verdict == "INVALID"
    )
    return errors.most_common(1)[0][0] if errors else "no verdict"


@dataclass
class StepRewardStats:
    """What one step's reward call saw; the metrics callback turns it into StepMetrics."""

    step: int
    rewards: list[float | None] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    completion_words: list[int] = field(default_factory=list)
    judge_seconds: float = 0.0
    judge_latencies: list[float] = field(default_factory=list)
    judge_retries: int = 0
    judge_attempts: int = 0
    judge_prompt_tokens: int = 0
    judge_completion_tokens: int = 0
    transitions: list[Transition] = field(default_factory=list)
    extra_means: dict[str, float] = field(default_factory=dict)

    @property
    def pairwise(self) -> list[float | None]:
        """The rollouts' pairwise rewards (their outcomes' rewards)."""
        return [outcome.reward for outcome in self.outcomes]

    @property
    def counts(self) -> OutcomeCounts:
        return OutcomeCounts.of(self.outcomes)

    def rate(self, outcome: Outcome | str | float | None) -> float | None:
        """The share of the step's rollouts with ``outcome`` (or the outcome a pairwise reward
        stands for); None for win / tie / loss when no rollout got a verdict."""
        if not isinstance(outcome, str):
            outcome = Outcome.from_reward(outcome)
        return self.counts.share(outcome)

    @property
    def invalid_rate(self) -> float:
        return self.counts.invalid_rate or 0.0

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
        *,
        outage: JudgeOutagePolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.instructions = dict(instructions)
        self.scheduler = scheduler
        self.pairwise = pairwise
        self.reporter = reporter
        self.outage = outage or JudgeOutagePolicy()
        self._sleep = sleep
        self._clock = clock
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
        outcomes, retries = self._judge_step(step, requests)
        judge_seconds = time.perf_counter() - started

        stats = StepRewardStats(step=step, judge_seconds=judge_seconds, judge_retries=retries)
        by_sample: dict[str, list[Outcome]] = defaultdict(list)
        records: list[JudgmentRecord] = []
        extra_sums: dict[str, float] = defaultdict(float)
        for index, (sid, text, outcome) in enumerate(
            zip(sample_ids, rollouts, outcomes, strict=True)
        ):
            instruction = self.instructions[sid]
            # The standing against the reference (WIN / TIE / LOSS / INVALID) drives the
            # curriculum; the base reward is its reward for the pairwise reward, and the
            # normalized score for the pointwise one.
            standing = outcome.outcome
            total: float | None = outcome.reward
            for name, weight in self.reward_terms.items():
                value = EXTRA_TERMS[name](instruction, text)
                extra_sums[name] += value
                if total is not None:
                    total += weight * value
            by_sample[sid].append(standing)
            stats.outcomes.append(standing)
            stats.rewards.append(total)
            stats.completion_words.append(count_words(text))
            for judgment, position in zip(
                outcome.judgments, outcome.policy_positions, strict=False
            ):
                stats.judge_latencies.append(judgment.latency_s)
                stats.judge_attempts += judgment.attempts
                stats.judge_prompt_tokens += judgment.usage.prompt_tokens
                stats.judge_completion_tokens += judgment.usage.completion_tokens
                records.append(
                    JudgmentRecord(
                        sample_id=sid,
                        step=step,
                        rollout_index=index,
                        rollout=text,
                        reference_tier=tiers[sid],
                        verdict=judgment.verdict.value,
                        reward=standing.reward,
                        total_reward=total,
                        position=position,
                        rationale=judgment.rationale,
                        judge=judgment.judge,
                        latency_s=judgment.latency_s,
                        error=judgment.error,
                        cached=judgment.cached,
                        outcome=standing.value,
                        attempts=judgment.attempts,
                        prompt_tokens=judgment.usage.prompt_tokens,
                        completion_tokens=judgment.usage.completion_tokens,
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

    def _judge_step(
        self, step: int, requests: Sequence[RewardRequest]
    ) -> tuple[list[RewardOutcome], int]:
        """Judge the step's requests; while too few get a verdict, wait and judge the ones
        without a verdict again, within the outage budget. Returns the outcomes and the
        number of re-judgings."""
        outcomes = list(self.pairwise.score_sync(requests))
        policy = self.outage
        retries = 0
        waited_since: float | None = None
        wait_s = policy.first_wait_s
        while True:
            counts = OutcomeCounts.of(o.outcome for o in outcomes)
            if not policy.too_few_verdicts(counts):
                break
            now = self._clock()
            if waited_since is None:
                waited_since = now
            waited = now - waited_since
            invalid_rate = counts.invalid_rate or 0.0
            error = _main_error(outcomes)
            if waited >= policy.budget_s:
                self._report_wait(None)
                raise JudgeOutageError(
                    f"step {step}: the judge gave no usable verdict for {counts.invalid} of "
                    f"{counts.total} rollouts ({invalid_rate:.0%}, the limit is "
                    f"{policy.max_invalid_rate:.0%}) through {retries} retries over "
                    f"{waited:.0f} s (outage budget {policy.budget_s:.0f} s); last error: "
                    f"{error}. The run keeps its last checkpoint and can be resumed."
                )
            log.warning(
                "step %s: %d/%d rollouts without a verdict; judging them again in %.0f s "
                "(%.0f of %.0f s waited): %s",
                step, counts.invalid, counts.total, wait_s, waited, policy.budget_s, error,
            )  # fmt: skip
            self._report_wait(
                JudgeWait(step, round(waited, 1), policy.budget_s, retries, invalid_rate, error)
            )
            self._wait(min(wait_s, policy.budget_s - waited))
            wait_s = min(wait_s * 2, policy.max_wait_s)
            retries += 1
            missing = [i for i, o in enumerate(outcomes) if not o.outcome.valid]
            again = self.pairwise.score_sync([requests[i] for i in missing])
            for index, outcome in zip(missing, again, strict=True):
                outcomes[index] = outcome
        if waited_since is not None:
            self._report_wait(None)
        return outcomes, retries

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds`` in slices; a stop asked for meanwhile ends the run here."""
        deadline = self._clock() + max(seconds, 0.0)
        while True:
            if self.reporter.should_stop():
                self._report_wait(None)
                raise JudgeOutageError(
                    "stopped while waiting for the judge; the run keeps its last checkpoint"
                )
            left = deadline - self._clock()
            if left <= 0:
                return
            self._sleep(min(left, 1.0))

    def _report_wait(self, wait: JudgeWait | None) -> None:
        report = getattr(self.reporter, "on_judge_wait", None)
        if callable(report):
            report(wait)
