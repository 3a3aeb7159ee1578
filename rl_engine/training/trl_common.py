"""What the TRL algorithms (GRPO, RLOO in ``trl_backend``; reference-SFT in ``sft``) share:
checking the instructions, seeding, the common ``TrainingArguments``, restoring the curriculum
on resume, quieting the trainer and describing how a run ended."""

from __future__ import annotations

import os
import random
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rl_engine.curriculum import CurriculumStore
from rl_engine.training.callbacks import ReportingCallback
from rl_engine.training.checkpoint import read_curriculum
from rl_engine.training.config import TrainConfig
from rl_engine.training.reporter import Reporter
from rl_engine.training.types import CheckpointInfo, TrainingInstruction, TrainResult


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


def dtype_name(config: TrainConfig, device: torch.device) -> str:
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
        # Rotation is ours (ReportingCallback.rotate), so checkpoints in use stay on disk.
        "save_total_limit": None,
        "seed": config.seed,
        "data_seed": config.seed,
        "logging_steps": 1,
        "report_to": config.report_to,
        "disable_tqdm": True,
        "use_cpu": device.type == "cpu",
        "bf16": dtype == "bfloat16",
        "fp16": dtype == "float16",
        "activation_checkpointing": config.gradient_checkpointing,
        "dataloader_num_workers": 0,
        "lr_scheduler_type": "constant",
    }


def report_dir(config: TrainConfig) -> Path | None:
    """Where ``config.report_to`` writes (None when it reports nowhere)."""
    if config.report_to == "none":
        return None
    return Path(config.logging_dir or Path(config.output_dir) / config.report_to)


@contextmanager
def reporting_environment(config: TrainConfig) -> Iterator[None]:
    """The environment the trainer's reporting callbacks read, for the duration of training:
    TensorBoard writes its events into :func:`report_dir`, W&B runs offline (never the network)
    into it. Restored afterwards."""
    folder = report_dir(config)
    if folder is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    values = {"TENSORBOARD_LOGGING_DIR": str(folder)}
    if config.report_to == "wandb":
        values |= {
            "WANDB_MODE": "offline", "WANDB_DIR": str(folder), "WANDB_SILENT": "true",
            "WANDB_ERROR_REPORTING": "false",  # no crash reports to W&B's servers either
        }  # fmt: skip
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    if config.report_to == "wandb":
        _finish_wandb_run()  # W&B state left by earlier code would ignore WANDB_DIR
    try:
        yield
    finally:
        if config.report_to == "wandb":
            _finish_wandb_run()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _finish_wandb_run() -> None:
    """End the W&B run the trainer's callback started, and W&B's per-process state with it.

    The callback leaves its run open until the process exits, and W&B reads ``WANDB_DIR``
    once per process: in a worker that trains run after run, the offline files would stay
    incomplete until the worker exits, and the next run's metrics would go into the same W&B
    run, in the first run's directory."""
    wandb = sys.modules.get("wandb")
    if wandb is None:
        return
    if getattr(wandb, "run", None) is not None:
        wandb.finish()
    wandb.teardown()


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
