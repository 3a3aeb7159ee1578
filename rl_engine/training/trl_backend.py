"""The TRL backend: GRPO and RLOO with the pairwise reward, Reference-SFT with SFTTrainer.

One process, one device. TRL's trainers do the optimisation and write their checkpoints; this
module prepares the dataset, the reward function, the trainer arguments (CPU: fp32 and
``use_cpu``; CUDA: bf16, a static KV cache or vLLM for rollouts), wires the reporting callback,
and restores the curriculum when resuming.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from typing import Any, cast

import torch
from datasets import Dataset

from rl_engine.curriculum import CurriculumStore, ReferenceScheduler
from rl_engine.judging import make_judge, make_scorer
from rl_engine.models import load_policy, resolve_device
from rl_engine.reward import PairwiseReward, PointwiseReward, Position
from rl_engine.training.callbacks import PhaseClock, ReportingCallback, TimedGenerationMixin
from rl_engine.training.checkpoint import resolve_resume
from rl_engine.training.config import TrainConfig
from rl_engine.training.reporter import Reporter
from rl_engine.training.reward_fn import JudgeOutagePolicy, PairwiseRewardFunction
from rl_engine.training.sampling import ResumableSamplerMixin
from rl_engine.training.sft import train_sft
from rl_engine.training.trl_common import (
    check_instructions,
    common_arguments,
    dtype_name,
    finish,
    quiet,
    reporting_environment,
    restore_curriculum,
    seed_everything,
)
from rl_engine.training.types import TrainingInstruction, TrainResult

logger = logging.getLogger(__name__)


def rl_arguments(config: TrainConfig, device: torch.device) -> dict[str, Any]:
    """GRPO/RLOO arguments: group size, sampling, KL, and the CUDA rollout engine."""
    arguments: dict[str, Any] = {
        "num_generations": config.num_generations,
        "max_completion_length": config.max_completion_tokens,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "beta": config.kl_beta,
        "log_completions": False,
    }
    if config.generation_kwargs:
        arguments["generation_kwargs"] = dict(config.generation_kwargs)
    if device.type == "cuda":
        vllm_mode = vllm_mode_for(config)
        if vllm_mode is not None:
            arguments["use_vllm"] = True
            arguments["vllm_mode"] = vllm_mode
            if config.use_vllm == "server":
                arguments["vllm_server_base_url"] = config.vllm_server_url
        elif config.static_cache:
            # HF's dynamic cache reallocates every decode step; a static cache was ~5x faster
            # per rollout step on an H100 (docs/benchmarks.md).
            arguments["cache_implementation"] = "static"
    return arguments


def vllm_mode_for(config: TrainConfig) -> str | None:
    """The TRL vLLM mode for a CUDA run, or None for HF generate (with a static cache).

    "auto" colocates vLLM when it is installed; asking for vLLM explicitly without it is an
    error that says how to install it.
    """
    installed = importlib.util.find_spec("vllm") is not None
    if config.use_vllm == "off" or (config.use_vllm == "auto" and not installed):
        return None
    if not installed:
        raise RuntimeError(
            f"TrainConfig.use_vllm={config.use_vllm!r} but vLLM is not installed: "
            "`pip install -e .[gpu]`, or set use_vllm='off'"
        )
    return "colocate" if config.use_vllm == "auto" else config.use_vllm


def _trainer_classes(algorithm: str) -> tuple[type, type]:
    if algorithm == "grpo":
        from trl import GRPOConfig, GRPOTrainer

        return GRPOConfig, type(
            "WritingRLGRPOTrainer", (ResumableSamplerMixin, TimedGenerationMixin, GRPOTrainer), {}
        )
    from trl import RLOOConfig, RLOOTrainer

    return RLOOConfig, type(
        "WritingRLRLOOTrainer", (ResumableSamplerMixin, TimedGenerationMixin, RLOOTrainer), {}
    )


def train_trl(
    config: TrainConfig,
    instructions: Sequence[TrainingInstruction],
    store: CurriculumStore,
    reporter: Reporter,
    resume_from: str | os.PathLike[str] | bool | None = None,
) -> TrainResult:
    """Run ``config.algorithm`` with TRL; see :func:`rl_engine.training.train`. With
    ``config.report_to`` the trainer's own metrics also go to TensorBoard or offline W&B."""
    with reporting_environment(config):
        return _train_trl(config, instructions, store, reporter, resume_from)


def _train_trl(
    config: TrainConfig,
    instructions: Sequence[TrainingInstruction],
    store: CurriculumStore,
    reporter: Reporter,
    resume_from: str | os.PathLike[str] | bool | None,
) -> TrainResult:
    by_id = check_instructions(config, instructions, store)
    resume_dir = resolve_resume(resume_from, config.output_dir)
    device = resolve_device(config.device)
    dtype = dtype_name(config, device)
    if config.algorithm != "sft":
        # Built first: a bad setting (e.g. vLLM asked for but missing) fails before the
        # curriculum is touched.
        config_cls, trainer_cls = _trainer_classes(config.algorithm)
        args = config_cls(**common_arguments(config, device, dtype), **rl_arguments(config, device))
    seed_everything(config.seed)
    restore_curriculum(resume_dir, store, reporter)
    model, tokenizer = load_policy(config.policy, device=str(device), dtype=dtype)
    if config.algorithm == "sft":
        return train_sft(
            config, by_id, store, reporter, model, tokenizer, device, dtype, resume_dir
        )

    scheduler = ReferenceScheduler(
        store,
        strategy=config.curriculum,
        min_wins=config.min_wins,
        seed=config.seed,
        static_tier=config.static_tier,
    )
    position = cast(Position, config.reward_position)
    reward: PairwiseReward | PointwiseReward
    if config.reward_kind == "pointwise":
        reward = PointwiseReward(make_scorer(config.judge))
    else:
        reward = PairwiseReward(make_judge(config.judge), position=position)
    outage = JudgeOutagePolicy(
        max_invalid_rate=config.judge_max_invalid_rate, budget_s=config.judge_outage_budget_s
    )
    reward_fn = PairwiseRewardFunction(
        by_id, scheduler, reward, reporter, config.reward_terms, outage=outage
    )
    dataset = Dataset.from_list(
        [
            {"prompt": [{"role": "user", "content": inst.prompt}], "sample_id": inst.sample_id}
            for inst in by_id.values()
        ]
    )
    clock = PhaseClock()
    callback = ReportingCallback(
        algorithm=config.algorithm,
        reporter=reporter,
        store=store,
        sample_ids=list(by_id),
        config_dict=config.to_dict(),
        clock=clock,
        reward_fn=reward_fn,
    )
    trainer = trainer_cls(
        model=model,
        reward_funcs=[reward_fn],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[callback],
    )
    trainer.phase_clock = clock
    quiet(trainer)
    trainer.train(resume_from_checkpoint=str(resume_dir) if resume_dir else None)
    return finish(config, trainer, tokenizer, callback, store, list(by_id), resume_dir)
