"""Plain records that training emits and consumes.

Every field is JSON-safe (str, int, float, bool, None, lists and str-keyed dicts of those), so a
reporter can write them to a database or a log file as they are: ``dataclasses.asdict`` is
enough.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rl_engine.outcomes import Outcome


@dataclass
class TrainingInstruction:
    """One training sample: the prompt, its references in ascending quality (tier 0 first),
    optional judging criteria and the number of words the prompt asks for."""

    sample_id: str
    prompt: str
    references: list[str]
    criteria: str | None = None
    required_words: int | None = None

    def __post_init__(self) -> None:
        if not self.sample_id:
            raise ValueError("a training instruction needs a non-empty sample_id")
        if not self.prompt.strip():
            raise ValueError(f"instruction {self.sample_id!r} has an empty prompt")
        if not self.references:
            raise ValueError(
                f"instruction {self.sample_id!r} has no references; give at least one "
                "(tier 0 = the weakest)"
            )
        if self.required_words is not None and self.required_words <= 0:
            raise ValueError(
                f"instruction {self.sample_id!r}: required_words must be positive or None, "
                f"got {self.required_words}"
            )

    @property
    def num_tiers(self) -> int:
        return len(self.references)


@dataclass
class StepMetrics:
    """What happened in one optimizer step.

    Rates are shares of this step's rollouts (``invalid_rate`` counts rollouts without a usable
    verdict); the win, tie and loss rates are None when no rollout got a verdict. The judge's
    requests (``judge_attempts``, re-asks and retries included), the step's re-judgings while
    the judge was out (``judge_retries``) and the tokens the endpoint reported are totals of
    the step. ``tier_histogram[t]`` is the number of training samples whose current tier is t
    after the step; ``mastered`` counts samples that beat their best reference. Throughputs are
    tokens per second of wall time of the generation phase and of the update phase (forward,
    backward, optimizer). Fields that an algorithm does not produce are None (SFT has no reward).
    """

    step: int
    algorithm: str
    loss: float | None = None
    kl: float | None = None
    learning_rate: float | None = None
    reward_mean: float | None = None
    reward_std: float | None = None
    pairwise_reward_mean: float | None = None
    win_rate: float | None = None
    tie_rate: float | None = None
    loss_rate: float | None = None
    invalid_rate: float | None = None
    rollouts: int = 0
    tier_histogram: list[int] = field(default_factory=list)
    mastered: int = 0
    mean_completion_words: float | None = None
    rollout_tokens: int = 0
    rollout_seconds: float = 0.0
    rollout_tokens_per_s: float | None = None
    update_tokens: int = 0
    update_seconds: float = 0.0
    update_tokens_per_s: float | None = None
    judge_seconds: float = 0.0
    judge_latency_s: float | None = None
    judge_attempts: int = 0
    judge_retries: int = 0
    judge_prompt_tokens: int = 0
    judge_completion_tokens: int = 0
    step_seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class JudgmentRecord:
    """One judge call on one rollout of one step.

    ``verdict`` is the judge's letter in this call (A / B / TIE / INVALID) and ``position``
    where the policy's text was shown ("first" / "second"). ``outcome`` is the *rollout's*
    standing against its reference (win / tie / loss / invalid, see :mod:`rl_engine.outcomes`)
    — with the reward position "both" it is combined over the two orders, so both records of
    a rollout carry the same outcome while each keeps its own letter. ``reward`` is that
    outcome's pairwise reward (None when no usable verdict) and ``total_reward`` what the
    trainer optimised (pairwise plus weighted extra terms). ``attempts`` counts the requests
    behind the call (0 for a cached judgment) and the token counts are what the endpoint
    reported for all of them.
    """

    sample_id: str
    step: int
    rollout_index: int
    rollout: str
    reference_tier: int
    verdict: str
    reward: float | None
    total_reward: float | None
    position: str
    rationale: str
    judge: str = ""
    latency_s: float = 0.0
    error: str | None = None
    cached: bool = False
    outcome: str = ""
    attempts: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __post_init__(self) -> None:
        # The rollout's outcome defaults to the one its pairwise reward stands for.
        self.outcome = str(
            Outcome(self.outcome) if self.outcome else Outcome.from_reward(self.reward)
        )


@dataclass
class JudgeWait:
    """The trainer is holding a step because the judge gives no usable verdicts.

    ``waited_s`` of ``budget_s`` seconds are spent; ``retries`` re-judgings were made;
    ``invalid_rate`` is the step's share of rollouts without a verdict at the last try and
    ``last_error`` the judge's most frequent error then.
    """

    step: int
    waited_s: float
    budget_s: float
    retries: int
    invalid_rate: float
    last_error: str


@dataclass
class CheckpointInfo:
    """A checkpoint on disk: everything needed to resume after ``step`` optimizer steps."""

    step: int
    path: str
    tiers: dict[str, int] = field(default_factory=dict)


@dataclass
class TrainResult:
    """How a call to ``train`` ended.

    ``steps`` is the number of optimizer steps completed in total (including steps done
    before a resume); ``stopped`` is True when the reporter asked to stop early.
    ``model_dir`` holds the final weights and tokenizer (an HF checkpoint directory; "" when
    the config asked not to save them).
    """

    run_dir: str
    steps: int
    stopped: bool
    model_dir: str
    last_checkpoint: str | None
    final_tiers: dict[str, int]
    resumed_from: str | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
