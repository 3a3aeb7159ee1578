"""The demo's sample dataset: instructions the project wrote itself, and the settings of the
SmolLM2 writers that generate its references (weak to strong)."""

from __future__ import annotations

from pathlib import Path

INSTRUCTIONS = Path(__file__).with_name("instructions.jsonl")
# The small-scale ablation study's instructions (docs/research-validity.md): 48 for training and
# 24 held out (split "eval"), varied tasks with explicit length targets of 30 to 150 words.
ABLATION_INSTRUCTIONS = Path(__file__).with_name("ablation_instructions.jsonl")
DATASET_NAME = "demo: short writing"
RUN_NAME = "demo run"

# One model, three settings: the tiers come from how it is asked, not from bigger models.
WRITERS = [
    {
        "name": "smollm2-terse",
        "endpoint": "local",
        "model": "smollm2-135m-instruct",
        "system_prompt": "Answer in one short sentence.",
        "temperature": 0.0,
        "max_tokens": 20,
        "extra": {"batch_size": 12},
    },
    {
        "name": "smollm2-plain",
        "endpoint": "local",
        "model": "smollm2-135m-instruct",
        "temperature": 0.7,
        "max_tokens": 48,
        "seed": 1,
        "extra": {"batch_size": 12},
    },
    {
        "name": "smollm2-careful",
        "endpoint": "local",
        "model": "smollm2-135m-instruct",
        "system_prompt": (
            "You are a skilled writer. Write vivid, specific, well-structured prose, never "
            "repeat a phrase, and keep to the requested length."
        ),
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 96,
        "seed": 2,
        "extra": {"batch_size": 12},
    },
]

# A run that moves on 2 CPU cores within minutes: short rollouts, a few GRPO steps.
RUN_CONFIG = {
    "algorithm": "grpo",
    "policy": "smollm2-135m-instruct",
    "judge": {"endpoint": "heuristic"},  # demo_launch: the deployment's default judge
    "num_generations": 2,
    "prompts_per_step": 2,
    "max_completion_tokens": 48,
    "temperature": 1.0,
    "learning_rate": 1e-5,
    "kl_beta": 0.0,
    "max_steps": 30,
    "checkpoint_every": 15,
    "keep_checkpoints": 1,
    "device": "cpu",
    "dtype": "float32",
    "reward_terms": {"length": 0.5},
}
