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
import random
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from datasets import Dataset

from rl_engine.curriculum import CurriculumStore, ReferenceScheduler
from rl_engine.judging import make_judge, make_scorer
from rl_engine.models import load_policy, resolve_device
from rl_engine.reward import PairwiseReward, PointwiseReward, Position
from rl_engine.training.callbacks import PhaseClock, ReportingCallback, TimedGenerationMixin
from rl_engine.training.checkpoint import read_curriculum, resolve_resume
from rl_engine.training.config import TrainConfig
from rl_engine.training.reporter import Reporter
from rl_engine.training.reward_fn import JudgeOutagePolicy, PairwiseRewardFunction
from rl_engine.training.sampling import ResumableSamplerMixin
from rl_engine.training.types import CheckpointInfo, TrainingInstruction, TrainResult

logger = logging.getLogger(__name__)


def check_instructions(
    config: TrainConfig, instructions: Sequence[TrainingInstruction], store: CurriculumStore
) -> dict[str, TrainingInstruction]:
    """Instructions by id, after checking them against the config and the curriculum store."""
    if not instructions:
        raise ValueError("train() needs at least one training instruction")
    by_id: dict[str, TrainingInstruction] = {}
    for position, instruction in enumerate(instructions):
        if instruction.sample_id in by_id:
            raise ValueError(
                f"instruction {position}: sample_id {instruction.sample_id!r} appears twice"
            )
        by_id[instruction.sample_id] = instruction
    if config.prompts_per_step > len(by_id):
        raise ValueError(
            f"TrainConfig.prompts_per_step={config.prompts_per_step} is more than the "
            f"{len(by_id)} training instructions; lower it to at most {len(by_id)}"
        )
    states = store.read_tiers(list(by_id))
    for sample_id, instruction in by_id.items():
        if states[sample_id].num_tiers != instruction.num_tiers:
            raise ValueError(
                f"instruction {sample_id!r} has {instruction.num_tiers} references but the "
                f"curriculum store has {states[sample_id].num_tiers} tiers for it; rebuild the "
                "store from the same instructions"
            )
    return by_id


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _dtype_name(config: TrainConfig, device: torch.device) -> str:
    if config.dtype != "auto":
        return config.dtype
    return "bfloat16" if device.type == "cuda" else "float32"


def common_arguments(config: TrainConfig, device: torch.device, dtype: str) -> dict[str, Any]:
    """TrainingArguments shared by every algorithm."""
    rollouts_or_prompts = (
        config.prompts_per_step
        if config.algorithm == "sft"
        else config.prompts_per_step * config.num_generations
    )
    return {
        "output_dir": config.output_dir,
        "per_device_train_batch_size": rollouts_or_prompts // config.gradient_accumulation_steps,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "learning_rate": config.learning_rate,
        "max_steps": config.max_steps,
        "save_strategy": "steps" if config.checkpoint_every else "no",
        "save_steps": config.checkpoint_every or config.max_steps,
        "save_total_limit": config.keep_checkpoints,
        "seed": config.seed,
        "data_seed": config.seed,
        "logging_steps": 1,
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": device.type == "cpu",
        "bf16": dtype == "bfloat16",
        "fp16": dtype == "float16",
        "activation_checkpointing": config.gradient_checkpointing,
        "dataloader_num_workers": 0,
        "lr_scheduler_type": "constant",
    }


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


def restore_curriculum(resume_dir: Path | None, store: CurriculumStore, reporter: Reporter) -> None:
    """Roll the store back to the checkpoint's tiers, so replayed steps advance nobody twice.

    A reporter with an ``on_resume(CheckpointInfo)`` method (optional, beyond the protocol)
    hears of it first: what it recorded for steps after ``checkpoint.step`` came from the lost
    part of the run and will be reported again.
    """
    if resume_dir is None:
        return
    step, snapshot = read_curriculum(resume_dir)
    on_resume = getattr(reporter, "on_resume", None)
    if callable(on_resume):
        tiers = {sid: state.tier for sid, state in snapshot.items()}
        on_resume(CheckpointInfo(step=step, path=str(resume_dir), tiers=tiers))
    store.restore(snapshot)


def train_trl(
    config: TrainConfig,
    instructions: Sequence[TrainingInstruction],
    store: CurriculumStore,
    reporter: Reporter,
    resume_from: str | os.PathLike[str] | bool | None = None,
) -> TrainResult:
    """Run ``config.algorithm`` with TRL; see :func:`rl_engine.training.train`."""
    by_id = check_instructions(config, instructions, store)
    resume_dir = resolve_resume(resume_from, config.output_dir)
    device = resolve_device(config.device)
    dtype = _dtype_name(config, device)
    if config.algorithm != "sft":
        # Built first: a bad setting (e.g. vLLM asked for but missing) fails before the
        # curriculum is touched.
        config_cls, trainer_cls = _trainer_classes(config.algorithm)
        args = config_cls(**common_arguments(config, device, dtype), **rl_arguments(config, device))
    seed_everything(config.seed)
    restore_curriculum(resume_dir, store, reporter)
    model, tokenizer = load_policy(config.policy, device=str(device), dtype=dtype)
    if config.algorithm == "sft":
        from rl_engine.training.sft import train_sft

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


def quiet(trainer: Any) -> None:
    """Metrics go to the reporter; without tqdm the trainer would also print every log dict."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    # TRL 1.16 still calls a transformers 5 alias every step; nothing a user can change.
    warnings.filterwarnings(
        "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
    )


def finish(
    config: TrainConfig,
    trainer: Any,
    tokenizer: Any,
    callback: ReportingCallback,
    store: CurriculumStore,
    sample_ids: list[str],
    resume_dir: Path | None,
) -> TrainResult:
    """Save the final weights and describe how the run ended."""
    model_dir = Path(config.output_dir) / "final"
    if config.save_final_model:
        trainer.save_model(str(model_dir))
        tokenizer.save_pretrained(str(model_dir))
    states = store.read_tiers(sample_ids)
    from dataclasses import asdict

    return TrainResult(
        run_dir=str(config.output_dir),
        steps=int(trainer.state.global_step),
        stopped=callback.stopped,
        model_dir=str(model_dir) if config.save_final_model else "",
        last_checkpoint=callback.last_checkpoint,
        final_tiers={sid: state.tier for sid, state in states.items()},
        resumed_from=str(resume_dir) if resume_dir else None,
        metrics=[asdict(m) for m in callback.history],
    )
