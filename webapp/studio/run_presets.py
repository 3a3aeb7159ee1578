"""Presets of the new-run form: named starting points for a ``TrainConfig``.

A preset sets only the fields it names; the judge is never part of one (it stays the
deployment's default, or whatever the researcher chose), nor are the run's name, dataset and
selection. Every value says where it comes from: ``sources`` maps a field to its reason.

Sources cited below:
- ``demo``: :data:`webapp.studio.demo.RUN_CONFIG`, the run ``make demo`` launches.
- REFERENCE §1, §2, §5: ``../shared/REFERENCE.md`` (the method; the authors' code and the
  paper's training config; the libraries as measured on these machines).
- slides: ``../shared/seed/writing-rl-slides.txt`` (the authors' talk).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rl_engine.training.config import TrainConfig
from webapp.studio.demo import RUN_CONFIG


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    description: str
    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)

    def config(self, **overrides: Any) -> TrainConfig:
        """The ``TrainConfig`` this preset gives on top of the defaults (validated)."""
        return TrainConfig(**{**self.values, **overrides})


DEMO = Preset(
    key="demo",
    label="Demo",
    description="The run `make demo` launches: SmolLM2-135M, 2 prompts × 2 rollouts of 48 "
    "tokens, 30 steps on the CPU. Moves within minutes on two cores.",
    values={k: v for k, v in RUN_CONFIG.items() if k != "judge"},
    sources={name: "webapp.studio.demo.RUN_CONFIG (the demo run)" for name in RUN_CONFIG},
)

CPU_SMALL = Preset(
    key="cpu-small",
    label="CPU small",
    description="A real but small experiment on a CPU box: SmolLM2-135M, 2 prompts × 4 "
    "rollouts of up to 96 tokens, 60 steps (~10 s a step on two cores).",
    values={
        "algorithm": "grpo",
        "policy": "smollm2-135m-instruct",
        "num_generations": 4,
        "prompts_per_step": 2,
        "max_completion_tokens": 96,
        "temperature": 1.0,
        "learning_rate": 1e-5,
        "kl_beta": 0.0,
        "max_steps": 60,
        "checkpoint_every": 20,
        "keep_checkpoints": 2,
        "device": "cpu",
        "dtype": "float32",
        "reward_terms": {"length": 0.5},
    },
    sources={
        "num_generations": "REFERENCE §5: one GRPO step with 4 generations × 48 tokens ≈ 5.5 s "
        "on 2 cores; 4 is also TrainConfig's default group size",
        "max_completion_tokens": "twice the demo's 48 tokens: the demo's references are "
        "30-150 words, and 48 tokens cut most rollouts short",
        "learning_rate": "the demo's 1e-5 (REFERENCE §2's 1e-6 is for 7B/8B models; small "
        "models tolerate more)",
        "kl_beta": "the demo's 0: no reference model in memory (3 GB RSS per step, REFERENCE §5)",
        "prompts_per_step": "the demo's 2 (TrainConfig's default): a step stays short",
        "algorithm": "GRPO, as the demo: no critic to train on a CPU (slides: GRPO works too)",
        "policy": "SmolLM2-135M, the one model that trains on two cores (REFERENCE §5)",
        "temperature": "TrainConfig's default 1.0: varied rollouts in a group",
        "device": "CPU (REFERENCE §5: TRL on CPU needs use_cpu=True, bf16=False)",
        "dtype": "float32 (REFERENCE §5: bf16 off on the CPU)",
        "reward_terms": "the demo's length term (LongBench-Write length score)",
        "max_steps": "our choice: ~10 minutes at the measured step time",
        "checkpoint_every": "our choice: three resumable checkpoints over the run",
        "keep_checkpoints": "our choice: two checkpoints (513 MiB each in fp32, REFERENCE §5)",
    },
)

GPU_PAPER = Preset(
    key="gpu-paper",
    label="GPU, paper-like",
    description="The paper's training config: PPO with a GAE critic on verl with vLLM "
    "rollouts, lr 1e-6, KL 0.001, batch 32, responses up to 10k tokens, the reference shown "
    "first, dynamic reference scheduling. Set the policy to your checkpoint (the paper "
    "trained Qwen2.5-7B and Llama3.1-8B; its judge was qwen-plus — choose the endpoint that "
    "serves it).",
    values={
        "backend": "verl",
        "algorithm": "ppo",
        "num_generations": 8,
        "prompts_per_step": 32,
        "max_completion_tokens": 10_000,
        "learning_rate": 1e-6,
        "kl_beta": 0.001,
        "reward_kind": "pairwise",
        "reward_position": "disadvantage",
        "curriculum": "dynamic",
        "min_wins": 1,
        "device": "cuda",
        "dtype": "bfloat16",
        "use_vllm": "colocate",
        "gradient_checkpointing": True,
    },
    sources={
        "backend": "REFERENCE §2: the authors' code is a fork of verl",
        "algorithm": "REFERENCE §2: PPO with GAE critic (slides: GRPO works too, 86.29 vs 87.23)",
        "num_generations": "used only if you switch to GRPO (PPO samples one rollout per "
        "prompt); REFERENCE §2 discusses the authors' code with groups of 8 rollouts",
        "prompts_per_step": "REFERENCE §2: batch 32",
        "max_completion_tokens": "REFERENCE §2: responses up to 10k tokens",
        "learning_rate": "REFERENCE §2: lr 1e-6",
        "kl_beta": "REFERENCE §2: KL 0.001",
        "reward_kind": "REFERENCE §1: pairwise reward beats pointwise scores",
        "reward_position": "REFERENCE §1 and slides: position disadvantage, the paper's default",
        "curriculum": "REFERENCE §1 and slides: dynamic reference scheduling",
        "min_wins": "slides: 'if policy wins, proceed' — one win moves a sample up one tier",
        "device": "REFERENCE §2: 8 GPUs",
        "dtype": "bfloat16, GRPOConfig's default (REFERENCE §5)",
        "use_vllm": "REFERENCE §2: vLLM rollouts",
        "gradient_checkpointing": "our choice: 10k-token responses need the memory",
    },
)

PRESETS: dict[str, Preset] = {p.key: p for p in (DEMO, CPU_SMALL, GPU_PAPER)}


def preset_choices() -> list[tuple[str, str]]:
    return [("", "— keep the form's values —")] + [(p.key, p.label) for p in PRESETS.values()]
