"""train(): GRPO, RLOO and Reference-SFT on the tiny model, reporting, stopping, dispatch."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rl_engine.curriculum import InMemoryStore
from rl_engine.models import load_policy, save_tiny_model
from rl_engine.training import (
    InMemoryReporter,
    TrainConfig,
    TrainingInstruction,
    train,
)
from rl_engine.training.checkpoint import CONFIG_FILE, read_curriculum
from tests.rl_engine.training.run_training import instructions


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(save_tiny_model(tmp_path_factory.mktemp("tiny") / "policy", seed=0))


def _config(policy: str, tmp_path: Path, **changes: object) -> TrainConfig:
    settings: dict[str, object] = {
        "policy": policy,
        "num_generations": 2,
        "prompts_per_step": 2,
        "max_completion_tokens": 6,
        "kl_beta": 0.0,
        "learning_rate": 1e-3,
        "max_steps": 3,
        "checkpoint_every": 2,
        "device": "cpu",
        "seed": 3,
        "output_dir": str(tmp_path / "run"),
    }
    settings.update(changes)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def _store(data: list[TrainingInstruction]) -> InMemoryStore:
    return InMemoryStore({i.sample_id: i.num_tiers for i in data})


def test_it_trains_grpo_and_reports_steps_judgments_tiers_and_checkpoints(
    policy: str, tmp_path: Path
) -> None:
    data = instructions()
    store, reporter = _store(data), InMemoryReporter()
    config = _config(policy, tmp_path, kl_beta=0.05, reward_terms={"repetition": 0.1})
    result = train(config, data, store, reporter)

    assert result.steps == 3 and not result.stopped
    assert [m.step for m in reporter.steps] == [1, 2, 3]
    for metrics in reporter.steps:
        assert metrics.algorithm == "grpo" and metrics.rollouts == 4
        rates = [metrics.win_rate, metrics.tie_rate, metrics.loss_rate, metrics.invalid_rate]
        assert sum(r or 0.0 for r in rates) == pytest.approx(1.0)
        assert sum(metrics.tier_histogram) == len(data)
        assert metrics.loss is not None and metrics.kl is not None and metrics.kl >= 0
        assert metrics.rollout_tokens == 4 * 6 and metrics.rollout_tokens_per_s
        assert metrics.update_tokens > metrics.rollout_tokens and metrics.update_tokens_per_s
        assert metrics.step_seconds >= metrics.rollout_seconds + metrics.update_seconds * 0.99
        assert metrics.mean_completion_words is not None
        assert metrics.judge_latency_s is not None and "term/repetition" in metrics.extra
    json.dumps([dataclasses.asdict(m) for m in reporter.steps])  # JSON-safe as they are

    # Every rollout judged once against its current reference, step numbers 1-based.
    assert len(reporter.judgments) == 3 * 4
    assert {j.step for j in reporter.judgments} == {1, 2, 3}
    assert all(j.position == "second" and j.judge == "heuristic" for j in reporter.judgments)
    # Token soup does not repeat itself, the tier-0 references do: samples move up.
    assert reporter.transitions and all(t.to_tier == t.from_tier + 1 for t in reporter.transitions)
    assert max(result.final_tiers.values()) >= 1
    assert reporter.steps[-1].tier_histogram[0] < len(data)
    moved = [(t.sample_id, t.step) for t in reporter.transitions]
    assert len(moved) == len(set(moved))

    # Checkpoints at 2 (interval) and 3 (end), each with its config and curriculum.
    assert [c.step for c in reporter.checkpoints] == [2, 3]
    checkpoint = Path(reporter.checkpoints[0].path)
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json"):
        assert (checkpoint / name).is_file(), name
    assert list(checkpoint.glob("rng_state*.pth"))
    step, tiers = read_curriculum(checkpoint)
    assert step == 2 and {s: t.tier for s, t in tiers.items()} == reporter.checkpoints[0].tiers
    assert TrainConfig.from_dict(json.loads((checkpoint / CONFIG_FILE).read_text())) == config
    assert all(state.last_step <= 2 for state in tiers.values())
    model, _ = load_policy(result.model_dir)
    assert model.config.num_hidden_layers == 2


def test_it_stops_within_one_step_when_the_reporter_asks(policy: str, tmp_path: Path) -> None:
    data = instructions()
    reporter = InMemoryReporter(stop_after_step=1)
    result = train(_config(policy, tmp_path, max_steps=50), data, _store(data), reporter)
    assert result.stopped and result.steps == 1
    assert [m.step for m in reporter.steps] == [1]
    assert [c.step for c in reporter.checkpoints] == [1]  # resumable from where it stopped


def test_it_trains_rloo_with_gradient_accumulation(policy: str, tmp_path: Path) -> None:
    data = instructions()
    reporter = InMemoryReporter()
    config = _config(policy, tmp_path, algorithm="rloo", max_steps=2, gradient_accumulation_steps=2)
    result = train(config, data, _store(data), reporter)
    assert result.steps == 2
    assert [m.algorithm for m in reporter.steps] == ["rloo", "rloo"]
    # One generation and one judge batch per optimizer step, split in two micro-batches.
    assert [m.rollouts for m in reporter.steps] == [4, 4]
    assert [m.rollout_tokens for m in reporter.steps] == [24, 24]
    assert sorted({j.step for j in reporter.judgments}) == [1, 2]
    assert len(reporter.judgments) == 8


def test_it_runs_reference_sft_through_the_same_reporter(policy: str, tmp_path: Path) -> None:
    data = instructions()
    store, reporter = _store(data), InMemoryReporter()
    config = _config(policy, tmp_path, algorithm="sft", max_steps=2, checkpoint_every=1)
    result = train(config, data, store, reporter)
    assert result.steps == 2
    assert [m.step for m in reporter.steps] == [1, 2]
    assert all(m.loss is not None and m.loss > 0 for m in reporter.steps)
    assert all(m.reward_mean is None and m.update_tokens_per_s for m in reporter.steps)
    assert reporter.judgments == [] and reporter.transitions == []
    assert [c.step for c in reporter.checkpoints] == [1, 2]
    assert result.final_tiers == {i.sample_id: 0 for i in data}


def test_it_dispatches_on_the_backend_and_names_a_missing_backend_module() -> None:
    from rl_engine.training import BackendUnavailableError, backend_entry_point
    from rl_engine.training.trl_backend import train_trl

    assert backend_entry_point("trl") is train_trl
    with pytest.raises(NotImplementedError, match=r"rl_engine/training/mlx_backend\.py does not"):
        backend_entry_point("mlx")
    assert issubclass(BackendUnavailableError, NotImplementedError)


def test_it_checks_instructions_against_the_store_before_loading_anything(
    policy: str, tmp_path: Path
) -> None:
    data = instructions()
    wrong = InMemoryStore({i.sample_id: 2 for i in data})
    with pytest.raises(ValueError, match="has 3 references but the curriculum store has 2"):
        train(_config(policy, tmp_path), data, wrong, InMemoryReporter())
    with pytest.raises(ValueError, match="appears twice"):
        train(_config(policy, tmp_path), data + data[:1], _store(data), InMemoryReporter())
    with pytest.raises(ValueError, match="prompts_per_step=2 is more than the 1 training"):
        train(_config(policy, tmp_path), data[:1], _store(data), InMemoryReporter())
    assert not (tmp_path / "run").exists()
