"""Reference-SFT: the supervised baseline, fine-tuning on each instruction's best reference.

Uses TRL's SFTTrainer on prompt/completion chat pairs (loss on the completion only) and reports
through the same Reporter as the RL algorithms: steps (loss, update tokens/s), checkpoints with
the (unchanged) curriculum snapshot, and ``should_stop()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset

from rl_engine.curriculum import CurriculumStore
from rl_engine.training.callbacks import PhaseClock, ReportingCallback
from rl_engine.training.config import TrainConfig
from rl_engine.training.reporter import Reporter
from rl_engine.training.trl_common import common_arguments, finish, quiet
from rl_engine.training.types import TrainingInstruction, TrainResult

# Room for the prompt on top of the completion budget when truncating SFT examples.
_PROMPT_ALLOWANCE_TOKENS = 1024


def sft_dataset(instructions: Mapping[str, TrainingInstruction]) -> Dataset:
    """One prompt/completion chat pair per instruction: the prompt and its best (last) reference."""
    return Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": inst.prompt}],
                "completion": [{"role": "assistant", "content": inst.references[-1]}],
            }
            for inst in instructions.values()
        ]
    )


def train_sft(
    config: TrainConfig,
    instructions: Mapping[str, TrainingInstruction],
    store: CurriculumStore,
    reporter: Reporter,
    model: Any,
    tokenizer: Any,
    device: torch.device,
    dtype: str,
    resume_dir: Path | None,
) -> TrainResult:
    """Fine-tune on the best references for ``config.max_steps`` steps."""
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        **common_arguments(config, device, dtype),
        max_length=config.max_completion_tokens + _PROMPT_ALLOWANCE_TOKENS,
        include_num_input_tokens_seen="all",
    )
    callback = ReportingCallback(
        algorithm="sft",
        reporter=reporter,
        store=store,
        sample_ids=list(instructions),
        config_dict=config.to_dict(),
        clock=PhaseClock(),
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=sft_dataset(instructions),
        processing_class=tokenizer,
        callbacks=[callback],
    )
    quiet(trainer)
    trainer.train(resume_from_checkpoint=str(resume_dir) if resume_dir else None)
    return finish(config, trainer, tokenizer, callback, store, list(instructions), resume_dir)
