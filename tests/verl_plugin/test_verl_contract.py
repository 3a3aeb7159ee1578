"""The reward hook under verl's own code, in a virtualenv with verl 0.9.1 installed.

verl cannot live in the project's environment (it pins transformers < 5.11), so this test
builds one under ``var/verl-venv`` (once, ~1-2 minutes; see ``verl_venv.py``) and runs
``verl_harness.py`` there: verl composes and validates the job config that
``rl_engine.training.verl_backend`` wrote, loads our hook through
``reward.custom_reward_function`` and scores rollouts with its reward manager — against the
fake judge and a live internal API of this test's database.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rl_engine.judging import JudgeSpec
from rl_engine.models import save_tiny_model
from rl_engine.testing.openai_server import FakeOpenAIServer
from rl_engine.training.config import TrainConfig
from rl_engine.training.types import TrainingInstruction
from rl_engine.training.verl_backend import EVAL_SOURCE, VerlSettings, build_job, dataset_rows
from tests import services
from tests.verl_plugin.verl_venv import ensure_venv
from tests.webapp.ops.conftest import TOKEN, make_run
from webapp.studio.models import CurriculumState, CurriculumTransition, Judgment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

HARNESS = Path(__file__).with_name("verl_harness.py")


def run_harness(python: Path, job_dir: Path, tokenizer_dir: Path, cases: list[dict[str, Any]],
                tmp_path: Path) -> dict[str, Any]:  # fmt: skip
    cases_path = tmp_path / f"cases-{job_dir.name}.json"
    cases_path.write_text(json.dumps(cases))
    env = {**os.environ, "WRITING_RL_INTERNAL_API_TOKEN": TOKEN, "RAY_DEDUP_LOGS": "0"}
    result = subprocess.run(
        [str(python), str(HARNESS), str(job_dir), str(tokenizer_dir), str(cases_path)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    output: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return output


def test_it_plugs_into_verls_reward_function_contract(
    transactional_db: None,
    live_server: Any,
    settings: Any,
    judge_server: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "WRITING_RL_ENDPOINTS",
        json.dumps([{"name": "judge", "base_url": judge_server.base_url, "models": ["judge"]}]),
    )
    try:
        python = ensure_venv()
    except RuntimeError as error:  # pip could not fetch verl or its dependencies
        services.missing("a virtualenv with verl 0.9.1", str(error)[-500:])
    settings.WRITING_RL_INTERNAL_API_TOKEN = TOKEN
    setup = make_run(tiers=(3, 2))
    instructions = [
        TrainingInstruction(
            sample_id=str(i.pk),
            prompt=i.prompt,
            references=[r.text for r in i.references.order_by("tier")],
        )
        for i in setup.instructions
    ]
    policy = save_tiny_model(tmp_path / "policy")
    config = TrainConfig(
        backend="verl", algorithm="grpo", policy=str(policy), prompts_per_step=32,
        num_generations=8, max_completion_tokens=10_000, output_dir=str(tmp_path / "run"),
        judge=JudgeSpec(endpoint="judge", model="judge", max_retries=0),
    )  # fmt: skip
    verl_settings = VerlSettings(api_url=live_server.url, checkpoint_dir=str(tmp_path / "ck"))
    grpo = build_job(config, instructions, verl_settings, run_id=str(setup.run.pk),
                     job_dir=tmp_path / "grpo", token=TOKEN)  # fmt: skip
    ppo_config = dataclasses.replace(config)
    ppo_config.algorithm = "ppo"  # until TrainConfig lists "ppo" itself
    ppo = build_job(ppo_config, instructions, verl_settings, run_id=str(setup.run.pk),
                    job_dir=tmp_path / "ppo", token=TOKEN)  # fmt: skip

    train_rows = dataset_rows(instructions)
    eval_row = dataset_rows(instructions[:1], EVAL_SOURCE)[0]

    def case(row: dict[str, Any], rollout: str, step: int) -> dict[str, Any]:
        return {"prompt": row["prompt"][0]["content"], "rollout": rollout, "step": step,
                "data_source": row["data_source"], "reward_model": row["reward_model"],
                "extra_info": row["extra_info"]}  # fmt: skip

    cases = [
        case(train_rows[0], "A GOOD story, vivid and whole.", 1),
        case(train_rows[0], "A plain story.", 1),
        case(train_rows[1], "GARBLE", 1),
        case(eval_row, "A plain story.", 1),
    ]
    out = run_harness(python, ppo.job_dir, policy, cases, tmp_path)

    # verl composed and validated the PPO job: GAE critic, the paper's hyper-parameters.
    assert out["manager"] == "NaiveRewardManager"
    composed = out["composed"]
    assert composed["adv_estimator"] == "gae" and composed["need_critic"] is True
    assert composed["actor_lr"] == 1e-6 and composed["kl_coef"] == 0.001
    assert composed["use_kl_in_reward"] is True and composed["use_kl_loss"] is False
    assert composed["train_batch_size"] == 32 and composed["max_response_length"] == 10_000
    assert composed["rollout_name"] == "vllm" and composed["rollout_n"] == 1
    assert composed["reward_path"] == "writing_rl_reward.py"
    assert composed["reward_name"] == "compute_score"
    assert composed["reward_kwargs"]["run_id"] == str(setup.run.pk)
    assert TOKEN not in json.dumps(composed)

    # verl's reward manager called our hook and took its score.
    scores = [r["reward_score"] for r in out["results"]]
    assert scores == [1.0, 0.5, 0.5, 0.5]
    assert [r["reward_extra_info"]["judge_invalid"] for r in out["results"]] == [0, 0, 1, 0]
    assert out["results"][3]["reward_extra_info"]["tier"] == 2.0  # eval: the best reference

    first, second = setup.instructions
    assert CurriculumState.objects.get(run=setup.run, instruction=first).tier == 1
    assert CurriculumState.objects.get(run=setup.run, instruction=second).tier == 0
    assert CurriculumTransition.objects.filter(run=setup.run).count() == 1
    verdicts = sorted(Judgment.objects.filter(run=setup.run).values_list("verdict", flat=True))
    assert verdicts == ["invalid", "tie", "win"]

    grpo_out = run_harness(python, grpo.job_dir, policy, [], tmp_path)["composed"]
    assert grpo_out["adv_estimator"] == "grpo" and grpo_out["need_critic"] is False
    assert grpo_out["rollout_n"] == 8 and grpo_out["use_kl_loss"] is True
    assert grpo_out["use_kl_in_reward"] is False
