"""TrainConfig: help texts, validation that says what to change, JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rl_engine.judging import JudgeSpec
from rl_engine.training import TrainConfig


def test_it_has_a_help_text_for_every_field() -> None:
    for field in dataclasses.fields(TrainConfig):
        assert len(field.metadata.get("help", "")) > 10, field.name
    assert set(TrainConfig.help()) == {f.name for f in dataclasses.fields(TrainConfig)}


def test_it_round_trips_through_json_with_the_nested_judge_spec() -> None:
    config = TrainConfig(
        algorithm="rloo",
        judge=JudgeSpec(endpoint="lab-judge", model="qwen-plus", structured_output="grammar"),
        reward_terms={"length": 0.5},
        curriculum="static",
        static_tier=-1,
        output_dir="/tmp/run",
    )
    payload = json.loads(json.dumps(config.to_dict()))
    assert payload["judge"]["model"] == "qwen-plus"
    assert "api_key" not in json.dumps(payload).replace("api_key_env", "")
    restored = TrainConfig.from_dict(payload)
    assert restored == config
    assert isinstance(restored.judge, JudgeSpec)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"algorithm": "dpo"}, "TrainConfig.algorithm must be one of grpo, rloo, sft, ppo"),
        ({"algorithm": "ppo"}, "algorithm='ppo' needs backend='verl'"),
        ({"backend": "deepspeed"}, "TrainConfig.backend must be one of trl, verl"),
        ({"num_generations": 1}, "TrainConfig.num_generations must be an integer >= 2"),
        ({"prompts_per_step": 3, "num_generations": 2, "gradient_accumulation_steps": 4},
         "choose a divisor of 6"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"reward_terms": {"style": 1.0}}, "unknown term 'style'; known: length, repetition"),
        ({"static_tier": 1}, "static_tier is only used with curriculum='static'"),
        ({"use_vllm": "server"}, "vllm_server_url is required"),
        ({"use_vllm": "colocate", "device": "cpu"}, "use_vllm needs CUDA"),
        ({"kl_beta": -1.0}, "kl_beta must be >= 0"),
        ({"checkpoint_every": -1}, "checkpoint_every must be an integer >= 0"),
        ({"reward_position": "middle"}, "reward_position must be one of"),
    ],
)  # fmt: skip
def test_it_says_which_field_to_change(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**changes)  # type: ignore[arg-type]


def test_it_rejects_unknown_fields_by_name() -> None:
    with pytest.raises(ValueError, match="unknown TrainConfig field\\(s\\): batchsize"):
        TrainConfig.from_dict({"batchsize": 8})


def test_it_accepts_one_generation_for_sft_only() -> None:
    assert TrainConfig(algorithm="sft", num_generations=1).num_generations == 1
