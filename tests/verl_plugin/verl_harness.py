"""Runs INSIDE the verl virtualenv (not collected by pytest): verl's own code drives the hook.

    python verl_harness.py JOB_DIR TOKENIZER_DIR CASES_JSON

1. composes the job's config exactly as ``python -m verl.trainer.main_ppo --config-dir=.
   --config-name=writing_rl_verl`` would (Hydra over verl's ``ppo_trainer``), then runs verl's
   ``validate_config`` on it and its legacy-reward migration;
2. from the job directory (a Ray job's working directory), loads the reward manager with verl's
   ``load_reward_manager`` — which imports our hook through ``custom_reward_function.path`` /
   ``name`` and binds ``reward_kwargs``;
3. scores each case through ``RewardManager.run_single`` with a ``DataProto`` built the way
   verl's agent loop builds it (token ids, attention mask, ``data_source``, ``reward_model``,
   ``extra_info``, the rollout server's ``tool_extra_fields`` with ``global_steps``), all cases
   concurrently as ``RewardLoopWorker.compute_score_batch`` does;
4. prints one JSON object: the composed settings the test checks and each case's result.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from tensordict import TensorDict
from transformers import AutoTokenizer
from verl import DataProto
from verl.experimental.reward_loop import migrate_legacy_reward_impl
from verl.trainer.ppo.reward import load_reward_manager
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import validate_config


def data_for(tokenizer, case: dict) -> DataProto:
    prompt_ids = tokenizer(case["prompt"], add_special_tokens=False)["input_ids"] or [0]
    response_ids = tokenizer(case["rollout"], add_special_tokens=False)["input_ids"]
    prompts = torch.tensor([prompt_ids], dtype=torch.int64)
    responses = torch.tensor([response_ids], dtype=torch.int64)
    input_ids = torch.cat([prompts, responses], dim=1)
    batch = TensorDict(
        {
            "prompts": prompts,
            "responses": responses,
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
        },
        batch_size=1,
    )
    non_tensor = {
        "data_source": np.array([case["data_source"]], dtype=object),
        "reward_model": np.array([case["reward_model"]], dtype=object),
        "extra_info": np.array([dict(case["extra_info"])], dtype=object),
        "tool_extra_fields": np.array([{"global_steps": case["step"]}], dtype=object),
        "__num_turns__": np.array([2]),
    }
    return DataProto(batch=batch, non_tensor_batch=non_tensor)


async def score_all(manager, tokenizer, cases: list[dict]) -> list[dict]:
    tasks = [asyncio.create_task(manager.run_single(data_for(tokenizer, c))) for c in cases]
    return list(await asyncio.gather(*tasks))


def main() -> None:
    job_dir, tokenizer_dir, cases_path = (Path(arg).resolve() for arg in sys.argv[1:4])
    with initialize_config_dir(config_dir=str(job_dir), version_base=None):
        config = compose(config_name="writing_rl_verl")
    validate_config(
        config=config,
        use_reference_policy=need_reference_policy(config),
        use_critic=need_critic(config),
    )
    config = migrate_legacy_reward_impl(config)
    composed = {
        "adv_estimator": config.algorithm.adv_estimator,
        "use_kl_in_reward": config.algorithm.use_kl_in_reward,
        "kl_coef": config.algorithm.kl_ctrl.kl_coef,
        "actor_lr": config.actor_rollout_ref.actor.optim.lr,
        "use_kl_loss": config.actor_rollout_ref.actor.use_kl_loss,
        "train_batch_size": config.data.train_batch_size,
        "max_response_length": config.data.max_response_length,
        "rollout_name": config.actor_rollout_ref.rollout.name,
        "rollout_n": config.actor_rollout_ref.rollout.n,
        "need_critic": bool(need_critic(config)),
        "reward_path": config.reward.custom_reward_function.path,
        "reward_name": config.reward.custom_reward_function.name,
        "reward_kwargs": OmegaConf.to_container(config.reward.custom_reward_function.reward_kwargs),
    }
    os.chdir(job_dir)  # a Ray job runs in its working directory
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    manager = load_reward_manager(config, tokenizer)
    cases = json.loads(cases_path.read_text())
    results = manager.loop.run_until_complete(score_all(manager, tokenizer, cases))
    print(json.dumps({"composed": composed, "manager": type(manager).__name__, "results": results}))


if __name__ == "__main__":
    main()
