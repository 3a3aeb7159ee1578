"""End to end on the real SmolLM2: GRPO steps with the heuristic judge move tiers up."""

from __future__ import annotations

from pathlib import Path

import pytest

from rl_engine.curriculum import InMemoryStore
from rl_engine.judging import JudgeSpec
from rl_engine.training import InMemoryReporter, TrainConfig, TrainingInstruction, train

PROMPTS = [
    "Write three sentences about a lighthouse keeper.",
    "Describe a rainy morning in a small town.",
    "Write a short note thanking a neighbour for their help.",
    "Explain in a few sentences why people like gardens.",
]


@pytest.mark.slow
def test_it_runs_grpo_on_smollm2_and_tiers_rise(tmp_path: Path) -> None:
    # Tier 0 is short and repeats itself, which the heuristic judge scores near zero: fluent
    # SmolLM2 prose beats it. Tier 1 is clean prose: hard to beat (ties at best).
    data = [
        TrainingInstruction(
            sample_id=f"s{i}",
            prompt=prompt,
            references=[
                "nice nice nice nice nice nice nice nice nice nice",
                "Morning light fell across the quiet harbour while gulls wheeled above the "
                "boats, and the keeper climbed the stairs to trim the lamp once more.",
            ],
        )
        for i, prompt in enumerate(PROMPTS)
    ]
    store = InMemoryStore({i.sample_id: i.num_tiers for i in data})
    reporter = InMemoryReporter()
    config = TrainConfig(
        policy="smollm2-135m-instruct",
        judge=JudgeSpec(endpoint="heuristic"),
        num_generations=4,
        prompts_per_step=2,
        max_completion_tokens=32,
        kl_beta=0.0,
        learning_rate=1e-6,
        max_steps=5,
        checkpoint_every=0,
        save_final_model=False,
        device="cpu",
        seed=0,
        output_dir=str(tmp_path / "run"),
    )
    result = train(config, data, store, reporter)
    assert result.steps == 5
    assert len(reporter.steps) == 5
    assert all(m.rollouts == 8 and m.invalid_rate == 0 for m in reporter.steps)
    rising = {t.sample_id for t in reporter.transitions if t.to_tier > t.from_tier}
    assert len(rising) >= 2, reporter.transitions
    assert reporter.steps[-1].tier_histogram[1] >= 2
    assert reporter.steps[0].win_rate and reporter.steps[0].win_rate > 0.5
    assert all((m.mean_completion_words or 0) > 5 for m in reporter.steps)
