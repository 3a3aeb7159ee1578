"""``TrainConfig``: every setting of a training run, with a help text and validation per field.

A config is plain data: ``to_dict()`` gives a JSON-safe dict (the judge spec nested as a dict)
and ``from_dict()`` rebuilds it, rejecting unknown fields by name. Validation runs in
``__post_init__`` and says which field to change and how.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rl_engine.judging import JudgeSpec

BACKENDS = ("trl", "verl")
ALGORITHMS = ("grpo", "rloo", "sft", "ppo")
POSITIONS = ("disadvantage", "advantage", "both")
REWARD_KINDS = ("pairwise", "pointwise")
CURRICULA = ("dynamic", "static", "random")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
VLLM_MODES = ("auto", "off", "colocate", "server")
# Where the trainer sends its metrics besides the reporter: nowhere, TensorBoard event files or
# W&B (always offline). The package each needs (any of them for TensorBoard).
REPORT_TO_PACKAGES: dict[str, tuple[str, ...]] = {
    "none": (),
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
}


def report_to_installed(name: str) -> bool:
    """Whether the package ``report_to=name`` needs is installed here."""
    import importlib.util

    packages = REPORT_TO_PACKAGES.get(name)
    if packages is None:
        return False
    return not packages or any(importlib.util.find_spec(p) is not None for p in packages)


# The choices a form offers: only those whose package is installed.
REPORT_TO = tuple(name for name in REPORT_TO_PACKAGES if report_to_installed(name))
# Extra reward terms (name -> what it measures, in [0, 1] or [-1, 0]).
REWARD_TERMS = {
    "length": "LongBench-Write length score S_l / 100 against the instruction's required_words "
    "(0 when the instruction has no required_words)",
    "repetition": "minus the share of repeated word 4-grams in the rollout (a penalty, -1..0)",
}


# Upper bounds of the integer settings: a run beyond them is a typo or an abuse of a shared
# service, not an experiment (10^9 generations would queue happily otherwise).
MAX_INT_SETTINGS = {
    "min_wins": 1024,
    "num_generations": 1024,
    "prompts_per_step": 65_536,
    "gradient_accumulation_steps": 65_536,
    "max_completion_tokens": 131_072,
    "max_steps": 10_000_000,
    "checkpoint_every": 10_000_000,
    "keep_checkpoints": 10_000,
}
# Bounds of the float settings (all of them must also be finite).
MAX_FLOAT_SETTINGS = {"temperature": 10.0, "learning_rate": 1.0, "kl_beta": 1000.0}
MAX_SEED = 2**32 - 1
# generation_kwargs: flat JSON only (what HF generate and vLLM sampling take).
MAX_GENERATION_KWARGS = 32
MAX_KWARG_LIST = 64
MAX_KWARG_TEXT = 1000


def _help(
    text: str, name: str | None = None, *, choices: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """A field's metadata: its help text (with its bound, for a bounded setting) and, for a
    fixed list of values, the ``choices`` (forms are generated from both)."""
    if name in MAX_INT_SETTINGS:
        text += f" At most {MAX_INT_SETTINGS[name]:,}."
    elif name in MAX_FLOAT_SETTINGS:
        text += f" At most {MAX_FLOAT_SETTINGS[name]:g}."
    return {"help": text} if choices is None else {"help": text, "choices": choices}


def _default_judge() -> JudgeSpec:
    return JudgeSpec(endpoint="heuristic")


@dataclass
class TrainConfig:
    """Settings of one training run. See each field's ``metadata["help"]``."""

    backend: str = field(
        default="trl",
        metadata=_help(
            "Training engine: 'trl' (TRL trainers, one process) or 'verl' (PPO/GRPO on "
            "Ray + vLLM; provided by rl_engine.training.verl_backend).",
            choices=BACKENDS,
        ),
    )
    algorithm: str = field(
        default="grpo",
        metadata=_help(
            "'grpo' (group-relative advantages), 'rloo' (leave-one-out baseline), "
            "'sft' (Reference-SFT: supervised fine-tuning on each instruction's best reference) or "
            "'ppo' (PPO with a GAE critic, the paper's setting; backend='verl' only).",
            choices=ALGORITHMS,
        ),
    )
    policy: str = field(
        default="smollm2-135m-instruct",
        metadata=_help(
            "Policy to train: 'smollm2-135m-instruct' or the path of a local HF "
            "checkpoint directory."
        ),
    )
    judge: JudgeSpec = field(
        default_factory=_default_judge,
        metadata=_help(
            "Pairwise judge: an endpoint the deployment declares (by name), a model among those "
            "it lists, and how to call it."
        ),
    )
    judge_max_invalid_rate: float = field(
        default=0.5,
        metadata=_help(
            "Hold a step for the judge when more than this share of its rollouts got no "
            "verdict (0..1; a step where no rollout got one is always held): the rollouts "
            "without a verdict are judged again with backoff, within judge_outage_budget_s."
        ),
    )
    judge_outage_budget_s: float = field(
        default=600.0,
        metadata=_help(
            "Seconds a step may wait for the judge (endpoint down, no verdicts) before the "
            "run ends 'failed' with the reason; its last checkpoint stays, so it can be "
            "resumed. Retries back off from 5 s to 60 s; 0 fails at the first such step."
        ),
    )
    judge_check_pairs: int = field(
        default=8,
        metadata=_help(
            "Before training, the judge is checked on this many reference pairs of two "
            "different tiers, each judged in both orders (0 skips the check; at most 200). "
            "The report is kept and shown on the run page."
        ),
    )
    judge_check_min_parse_rate: float = field(
        default=0.8,
        metadata=_help(
            "The run refuses to start when fewer of the check's judgments than this share "
            "(0..1) gave a verdict ([[A]], [[B]] or a tie)."
        ),
    )
    judge_check_min_consistency: float = field(
        default=0.6,
        metadata=_help(
            "The run refuses to start when fewer of the check's pairs than this share (0..1) "
            "got the same winner in both orders: a judge that always answers 'A' scores 0."
        ),
    )
    judge_check_override: bool = field(
        default=False,
        metadata=_help(
            "Train even when the judge check fails (the report is still kept; the override is "
            "recorded in the audit log)."
        ),
    )
    reward_kind: str = field(
        default="pairwise",
        metadata=_help(
            "'pairwise' (the judge compares the rollout with the current reference: 1 / 0.5 / "
            "0) or 'pointwise' (the paper's baseline: the rollout's own 1..10 score mapped to "
            "0..1; the curriculum compares it with the reference's score). Pointwise needs an "
            "OpenAI-compatible or the 'heuristic' endpoint.",
            choices=REWARD_KINDS,
        ),
    )
    reward_position: str = field(
        default="disadvantage",
        metadata=_help(
            "Where the rollout is shown to the judge: 'disadvantage' (reference first, "
            "the paper's default), 'advantage' (rollout first) or 'both' (both orders; a flip is a "
            "tie).",
            choices=POSITIONS,
        ),
    )
    curriculum: str = field(
        default="dynamic",
        metadata=_help(
            "Reference scheduling: 'dynamic' (each sample moves up a tier when it "
            "beats its reference), 'static' (always static_tier) or 'random'.",
            choices=CURRICULA,
        ),
    )
    min_wins: int = field(
        default=1,
        metadata=_help(
            "Wins (out of num_generations rollouts of a step) a sample needs to move "
            "up one tier in the dynamic curriculum.",
            "min_wins",
        ),
    )
    static_tier: int | None = field(
        default=None,
        metadata=_help(
            "Tier used by the static curriculum (negative counts from the top; None = "
            "the best reference). Only with curriculum='static'."
        ),
    )
    reward_terms: dict[str, float] = field(
        default_factory=dict,
        metadata=_help(
            "Extra reward terms added to the pairwise reward with these weights, e.g. "
            "{'length': 0.5}. Known: "
            + "; ".join(f"{k}: {v}" for k, v in REWARD_TERMS.items())
            + ". The curriculum only ever sees the pairwise term."
        ),
    )
    num_generations: int = field(
        default=4,
        metadata=_help(
            "Rollouts per prompt in each step (the group size; at least 2).", "num_generations"
        ),
    )
    prompts_per_step: int = field(
        default=2,
        metadata=_help(
            "Distinct prompts per optimizer step; a step makes prompts_per_step x "
            "num_generations rollouts.",
            "prompts_per_step",
        ),
    )
    gradient_accumulation_steps: int = field(
        default=1,
        metadata=_help(
            "Split each step's rollouts into this many micro-batches for the update "
            "(less memory, same step). Must divide prompts_per_step x num_generations.",
            "gradient_accumulation_steps",
        ),
    )
    max_completion_tokens: int = field(
        default=256,
        metadata=_help("Maximum new tokens per rollout.", "max_completion_tokens"),
    )
    temperature: float = field(
        default=1.0,
        metadata=_help("Sampling temperature of rollouts (> 0).", "temperature"),
    )
    top_p: float = field(default=1.0, metadata=_help("Nucleus sampling of rollouts, in (0, 1]."))
    learning_rate: float = field(
        default=1e-6,
        metadata=_help(
            "Optimizer learning rate (the paper used 1e-6 for 7B/8B models; small "
            "models tolerate more).",
            "learning_rate",
        ),
    )
    kl_beta: float = field(
        default=0.001,
        metadata=_help(
            "KL penalty coefficient against the initial policy (0 disables it and "
            "saves the reference model's memory). Ignored by sft.",
            "kl_beta",
        ),
    )
    max_steps: int = field(
        default=100, metadata=_help("Optimizer steps to run in total.", "max_steps")
    )
    checkpoint_every: int = field(
        default=50,
        metadata=_help(
            "Write a resumable checkpoint every this many steps, and at the last step "
            "(0 = no checkpoints except when the reporter stops the run).",
            "checkpoint_every",
        ),
    )
    save_final_model: bool = field(
        default=True,
        metadata=_help("Write the final weights and tokenizer to <output_dir>/final."),
    )
    keep_checkpoints: int | None = field(
        default=3,
        metadata=_help("Keep only the newest N checkpoints (None keeps all).", "keep_checkpoints"),
    )
    seed: int = field(default=0, metadata=_help("Seed for data order, sampling and init."))
    device: str = field(
        default="auto",
        metadata=_help("'auto' (CUDA when available), 'cpu' or 'cuda'.", choices=DEVICES),
    )
    dtype: str = field(
        default="auto",
        metadata=_help(
            "Weights dtype: 'auto' (bf16 on CUDA, fp32 on CPU), 'float32', 'bfloat16' or "
            "'float16'.",
            choices=DTYPES,
        ),
    )
    output_dir: str = field(
        default="var/runs/default",
        metadata=_help(
            "Run directory: checkpoints (checkpoint-<step>/) and the final model (final/) go here."
        ),
    )
    use_vllm: str = field(
        default="auto",
        metadata=_help(
            "Rollouts with vLLM on CUDA: 'auto' (colocate when vLLM is installed, else HF "
            "generate), 'off', 'colocate' (same GPU as training) or 'server' (a `trl vllm-serve` "
            "process at vllm_server_url). Needs the gpu extra. Ignored on CPU.",
            choices=VLLM_MODES,
        ),
    )
    vllm_server_url: str = field(
        default="",
        metadata=_help("Base URL of the `trl vllm-serve` server, when use_vllm='server'."),
    )
    static_cache: bool = field(
        default=True,
        metadata=_help(
            "On CUDA without vLLM, generate with a static KV cache "
            "(cache_implementation='static'); HF's default dynamic cache is several times slower."
        ),
    )
    generation_kwargs: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help(
            "Extra keyword arguments for rollout generation (HF generate or vLLM "
            "sampling), e.g. {'min_new_tokens': 64}; JSON values only."
        ),
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata=_help("Recompute activations in the backward pass (less memory, ~30% slower)."),
    )
    logging_dir: str | None = field(
        default=None,
        metadata=_help(
            "Where report_to writes (TensorBoard events, offline W&B runs); empty: "
            "<output_dir>/<report_to>."
        ),
    )
    report_to: str = field(
        default="none",
        metadata=_help(
            "Also send the trainer's metrics to TensorBoard (event files) or W&B (offline, no "
            "network), under the run directory; trl backend only. Only installed ones are "
            "offered.",
            choices=REPORT_TO,
        ),
    )

    def __post_init__(self) -> None:
        if isinstance(self.judge, Mapping):
            self.judge = JudgeSpec.from_dict(self.judge)
        self.reward_terms = dict(self.reward_terms)
        self.generation_kwargs = dict(self.generation_kwargs)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first field to change."""
        _choice("backend", self.backend, BACKENDS)
        _choice("algorithm", self.algorithm, ALGORITHMS)
        _choice("reward_kind", self.reward_kind, REWARD_KINDS)
        _choice("reward_position", self.reward_position, POSITIONS)
        _choice("curriculum", self.curriculum, CURRICULA)
        _choice("device", self.device, DEVICES)
        _choice("dtype", self.dtype, DTYPES)
        _choice("use_vllm", self.use_vllm, VLLM_MODES)
        _choice("report_to", self.report_to, tuple(REPORT_TO_PACKAGES))
        if not report_to_installed(self.report_to):
            raise ValueError(
                f"TrainConfig.report_to={self.report_to!r} needs the "
                f"{' or '.join(REPORT_TO_PACKAGES[self.report_to])} package, which is not "
                "installed here; choose 'none' or install it"
            )
        if self.report_to != "none" and self.backend != "trl":
            raise ValueError(
                f"TrainConfig.report_to={self.report_to!r} works with the trl backend only; "
                f"the {self.backend} backend logs to the console (the run's worker log)"
            )
        if not isinstance(self.judge, JudgeSpec):
            raise ValueError(
                f"TrainConfig.judge must be a JudgeSpec or its dict, got {self.judge!r}"
            )
        if not self.policy:
            raise ValueError("TrainConfig.policy is empty: name 'smollm2-135m-instruct' or a path")
        if not self.output_dir:
            raise ValueError("TrainConfig.output_dir is empty: give a run directory")
        _at_least("min_wins", self.min_wins, 1)
        _at_least("prompts_per_step", self.prompts_per_step, 1)
        _at_least("gradient_accumulation_steps", self.gradient_accumulation_steps, 1)
        _at_least("max_completion_tokens", self.max_completion_tokens, 1)
        _at_least("max_steps", self.max_steps, 1)
        _at_least("checkpoint_every", self.checkpoint_every, 0)
        if self.keep_checkpoints is not None:
            _at_least("keep_checkpoints", self.keep_checkpoints, 1)
        if self.reward_kind == "pointwise" and self.judge.kind == "local":
            raise ValueError(
                "TrainConfig.reward_kind='pointwise' needs a judge of kind 'openai' or "
                "'heuristic' (a local model judges pairs, not 1..10 scores)"
            )
        if self.algorithm == "ppo" and self.backend != "verl":
            raise ValueError(
                "TrainConfig.algorithm='ppo' needs backend='verl' (TRL 1.16 has no PPO trainer); "
                "use algorithm='grpo' or 'rloo' on backend='trl'"
            )
        if self.algorithm in ("grpo", "rloo"):
            _at_least("num_generations", self.num_generations, 2)
            rollouts = self.prompts_per_step * self.num_generations
            if rollouts % self.gradient_accumulation_steps:
                raise ValueError(
                    f"TrainConfig.gradient_accumulation_steps={self.gradient_accumulation_steps} "
                    f"must divide the step's rollouts (prompts_per_step x num_generations = "
                    f"{rollouts}); choose a divisor of {rollouts}"
                )
        elif self.prompts_per_step % self.gradient_accumulation_steps:
            raise ValueError(
                f"TrainConfig.gradient_accumulation_steps={self.gradient_accumulation_steps} must "
                f"divide prompts_per_step={self.prompts_per_step} for sft"
            )
        if not isinstance(self.judge_max_invalid_rate, int | float) or not (
            0 <= self.judge_max_invalid_rate <= 1
        ):
            raise ValueError(
                "TrainConfig.judge_max_invalid_rate must be a share in [0, 1]; got "
                f"{self.judge_max_invalid_rate!r}"
            )
        if not isinstance(self.judge_outage_budget_s, int | float) or (
            self.judge_outage_budget_s < 0
        ):
            raise ValueError(
                "TrainConfig.judge_outage_budget_s must be seconds >= 0 (e.g. 600); got "
                f"{self.judge_outage_budget_s!r}"
            )
        for name in ("judge_check_min_parse_rate", "judge_check_min_consistency"):
            share = getattr(self, name)
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
                raise ValueError(f"TrainConfig.{name} must be a share in [0, 1]; got {share!r}")
        pairs = self.judge_check_pairs
        if not isinstance(pairs, int) or isinstance(pairs, bool) or not 0 <= pairs <= 200:
            raise ValueError(
                "TrainConfig.judge_check_pairs must be an integer in [0, 200] (0 skips the "
                f"check); got {self.judge_check_pairs!r}"
            )
        if self.temperature <= 0:
            raise ValueError(
                f"TrainConfig.temperature must be > 0 for RL rollouts, got {self.temperature}"
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"TrainConfig.top_p must be in (0, 1], got {self.top_p}")
        if self.learning_rate <= 0:
            raise ValueError(f"TrainConfig.learning_rate must be > 0, got {self.learning_rate}")
        if self.kl_beta < 0:
            raise ValueError(f"TrainConfig.kl_beta must be >= 0 (0 disables), got {self.kl_beta}")
        if self.static_tier is not None and self.curriculum != "static":
            raise ValueError(
                "TrainConfig.static_tier is only used with curriculum='static'; unset it or "
                "set curriculum='static'"
            )
        for name, weight in self.reward_terms.items():
            if name not in REWARD_TERMS:
                raise ValueError(
                    f"TrainConfig.reward_terms has unknown term {name!r}; known: "
                    f"{', '.join(REWARD_TERMS)}"
                )
            if not isinstance(weight, int | float) or isinstance(weight, bool):
                raise ValueError(f"TrainConfig.reward_terms[{name!r}] must be a number")
            if not math.isfinite(weight) or abs(weight) > 100:
                raise ValueError(
                    f"TrainConfig.reward_terms[{name!r}] must be a finite number in [-100, 100]"
                )
        _check_generation_kwargs(self.generation_kwargs)
        self._check_bounds()
        if self.use_vllm == "server" and not self.vllm_server_url:
            raise ValueError(
                "TrainConfig.vllm_server_url is required with use_vllm='server' "
                "(e.g. http://127.0.0.1:8000)"
            )
        if self.use_vllm in ("colocate", "server") and self.device == "cpu":
            raise ValueError(
                "TrainConfig.use_vllm needs CUDA; set use_vllm='off' (or 'auto') on device='cpu'"
            )

    def _check_bounds(self) -> None:
        for name, maximum in MAX_INT_SETTINGS.items():
            value = getattr(self, name)
            if value is not None and value > maximum:
                raise ValueError(
                    f"TrainConfig.{name} must be at most {maximum:,}; got {_short(value)}"
                )
        for name, bound in MAX_FLOAT_SETTINGS.items():
            number = getattr(self, name)
            if not isinstance(number, int | float) or isinstance(number, bool):
                raise ValueError(f"TrainConfig.{name} must be a number; got {_short(number)}")
            if not math.isfinite(number) or number > bound:
                raise ValueError(
                    f"TrainConfig.{name} must be a finite number at most {bound:g}; "
                    f"got {_short(number)}"
                )
        if not isinstance(self.top_p, int | float) or not math.isfinite(self.top_p):
            raise ValueError(f"TrainConfig.top_p must be a finite number; got {self.top_p!r}")
        if (
            not isinstance(self.seed, int)
            or isinstance(self.seed, bool)
            or not 0 <= self.seed <= MAX_SEED
        ):
            raise ValueError(
                f"TrainConfig.seed must be an integer in [0, {MAX_SEED}]; got {_short(self.seed)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; ``from_dict(to_dict())`` gives an equal config."""
        payload = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        payload["judge"] = self.judge.to_dict()
        payload["reward_terms"] = dict(self.reward_terms)
        payload["generation_kwargs"] = dict(self.generation_kwargs)
        return payload

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> TrainConfig:
        """Build a config from a dict; unknown fields are an error that names them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(
                f"unknown TrainConfig field(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        values = dict(payload)
        if isinstance(values.get("judge"), Mapping):
            values["judge"] = JudgeSpec.from_dict(values["judge"])
        return cls(**values)

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name -> help text, for forms and CLIs."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def _short(value: object) -> str:
    """A value for a message, kept short (10**30 or a huge string stays readable)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
        return f"{value:.3e}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_scalar(value: object) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return abs(value) <= 2**31 - 1
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and len(value) <= MAX_KWARG_TEXT


def _check_generation_kwargs(kwargs: Mapping[str, Any]) -> None:
    """Flat JSON only: a name -> a scalar (finite number, bounded text, bool, null) or a short
    list of scalars (e.g. stop strings). Nested values are refused: they reach generate()."""
    if len(kwargs) > MAX_GENERATION_KWARGS:
        raise ValueError(
            f"TrainConfig.generation_kwargs has {len(kwargs)} entries; at most "
            f"{MAX_GENERATION_KWARGS}"
        )
    for key, value in kwargs.items():
        where = f"TrainConfig.generation_kwargs[{_short(key)}]"
        if not isinstance(key, str) or not key.isidentifier() or len(key) > 64:
            raise ValueError(f"{where}: the name must be an identifier of at most 64 characters")
        if isinstance(value, list):
            if len(value) > MAX_KWARG_LIST or not all(_is_scalar(v) for v in value):
                raise ValueError(
                    f"{where} must be a list of at most {MAX_KWARG_LIST} numbers or strings, "
                    "not nested"
                )
        elif not _is_scalar(value):
            raise ValueError(
                f"{where} must be a finite number, a string of at most {MAX_KWARG_TEXT} "
                f"characters, true/false, null or a flat list; got {_short(value)}"
            )


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"TrainConfig.{name} must be one of {', '.join(allowed)}; got {value!r}")


def _at_least(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"TrainConfig.{name} must be an integer >= {minimum}; got {value!r}")
