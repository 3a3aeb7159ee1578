"""The trainer arguments per device: fp32 + use_cpu on CPU, bf16 + static cache / vLLM on CUDA.

These build the argument dicts only (no GPU needed); GRPOConfig validates the CPU set.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from trl import GRPOConfig

from rl_engine.training import TrainConfig
from rl_engine.training.trl_backend import rl_arguments, vllm_mode_for
from rl_engine.training.trl_common import common_arguments

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def test_it_trains_in_fp32_with_use_cpu_on_cpu(tmp_path: object) -> None:
    config = TrainConfig(device="cpu", output_dir=str(tmp_path), prompts_per_step=3,
                         num_generations=4, gradient_accumulation_steps=2)  # fmt: skip
    arguments = {
        **common_arguments(config, torch.device("cpu"), "float32"),
        **rl_arguments(config, torch.device("cpu")),
    }
    assert arguments["use_cpu"] and not arguments["bf16"]
    assert "cache_implementation" not in arguments and "use_vllm" not in arguments
    grpo = GRPOConfig(**arguments)
    # One generation batch per optimizer step: 3 prompts x 4 rollouts.
    assert grpo.generation_batch_size == 12 and grpo.steps_per_generation == 2
    assert not grpo.activation_checkpointing


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here, so 'auto' picks it")
def test_it_generates_with_a_static_cache_in_bf16_on_cuda(tmp_path: object) -> None:
    config = TrainConfig(device="cuda", output_dir=str(tmp_path))
    cuda = torch.device("cuda")
    assert common_arguments(config, cuda, "bfloat16")["bf16"]
    arguments = rl_arguments(config, cuda)
    assert arguments["cache_implementation"] == "static"
    assert "use_vllm" not in arguments
    plain = rl_arguments(TrainConfig(device="cuda", static_cache=False, use_vllm="off"), cuda)
    assert "cache_implementation" not in plain


def test_it_uses_vllm_when_asked_and_says_how_to_install_it(tmp_path: object) -> None:
    server = TrainConfig(device="cuda", use_vllm="server", vllm_server_url="http://gpu:8000")
    assert vllm_mode_for(TrainConfig(use_vllm="off")) is None
    if HAS_VLLM:
        arguments = rl_arguments(server, torch.device("cuda"))
        assert arguments["vllm_mode"] == "server"
        assert arguments["vllm_server_base_url"] == "http://gpu:8000"
        assert vllm_mode_for(TrainConfig(use_vllm="auto")) == "colocate"
    else:
        assert vllm_mode_for(TrainConfig(use_vllm="auto")) is None
        with pytest.raises(RuntimeError, match=r"pip install -e \.\[gpu\]"):
            rl_arguments(server, torch.device("cuda"))
