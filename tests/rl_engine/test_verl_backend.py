"""The verl backend: the job it writes, and how it submits and follows it (with a fake Ray).

verl's own composition and validation of the written config runs in
``tests/verl_plugin/test_verl_contract.py`` (a verl virtualenv); here, fast, the values.
"""

from __future__ import annotations

import json
import stat
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from rl_engine.curriculum import InMemoryStore, StepOutcome, TierState, dump_snapshot
from rl_engine.judging import JudgeSpec
from rl_engine.judging.endpoints import VERDICT_GRAMMAR
from rl_engine.training import InMemoryReporter, train
from rl_engine.training.config import TrainConfig
from rl_engine.training.types import TrainingInstruction
from rl_engine.training.verl_backend import (
    VerlSettings,
    build_job,
    parse_step_line,
    step_metrics,
    verl_config,
)

JUDGE = JudgeSpec(endpoint="judge", model="qwen-plus")


@pytest.fixture(autouse=True)
def judge_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployment declares the judge (its URL and key variable live there, not in runs)."""
    monkeypatch.setenv(
        "WRITING_RL_ENDPOINTS",
        '[{"name": "judge", "base_url": "http://judge:8000/v1", "models": ["qwen-plus"], '
        '"api_key_env": "OPENAI_API_KEY"}]',
    )


SETTINGS = VerlSettings(api_url="http://studio:8000", gpus_per_node=8)
INSTRUCTIONS = [
    TrainingInstruction("11", "Write a fable.", ["weak fable", "good fable"], criteria="Moral."),
    TrainingInstruction("12", "Write a memo.", ["weak memo"], required_words=300),
]


def paper_config(tmp_path: Path, **changes: Any) -> TrainConfig:
    values: dict[str, Any] = {
        "backend": "verl", "algorithm": "grpo", "judge": JUDGE, "policy": "/models/qwen2.5-7b",
        "prompts_per_step": 32, "num_generations": 8, "max_completion_tokens": 10_000,
        "output_dir": str(tmp_path / "run"),
    }  # fmt: skip
    return TrainConfig(**{**values, **changes})


def ppo(config: TrainConfig) -> TrainConfig:
    config.algorithm = "ppo"  # TrainConfig does not list "ppo" yet; the backend does
    return config


def test_it_writes_the_papers_ppo_setting_by_default(tmp_path: Path) -> None:
    job = verl_config(ppo(paper_config(tmp_path)), SETTINGS, run_id="7",
                      checkpoint_dir="/ck", experiment_name="run-7")  # fmt: skip
    assert job["defaults"] == ["ppo_trainer", "_self_"]
    assert job["algorithm"]["adv_estimator"] == "gae" and job["critic"]["enable"] is True
    assert job["actor_rollout_ref"]["actor"]["optim"]["lr"] == 1e-6
    assert job["algorithm"]["use_kl_in_reward"] is True
    assert job["algorithm"]["kl_ctrl"]["kl_coef"] == 0.001
    assert job["actor_rollout_ref"]["actor"]["use_kl_loss"] is False
    assert job["data"]["train_batch_size"] == 32
    assert job["data"]["max_response_length"] == 10_000
    rollout = job["actor_rollout_ref"]["rollout"]
    assert (rollout["name"], rollout["mode"], rollout["n"]) == ("vllm", "async", 1)
    hook = job["reward"]["custom_reward_function"]
    assert (hook["path"], hook["name"]) == ("writing_rl_reward.py", "compute_score")
    assert hook["reward_kwargs"] == {
        "api_url": "http://studio:8000", "run_id": "7", "judge_base_url": "http://judge:8000/v1",
        "judge_model": "qwen-plus", "judge_api_key_env": "OPENAI_API_KEY",
        "position": "disadvantage", "prompts_file": "judge_prompts.json", "max_concurrency": 32,
        "timeout_s": 120.0, "max_retries": 5, "judge_extra_body": {},
        "judge_outage_budget_s": 600.0,
    }  # fmt: skip
    trainer = job["trainer"]
    assert trainer["total_training_steps"] == 100 and trainer["n_gpus_per_node"] == 8
    assert trainer["resume_mode"] == "disable" and trainer["val_before_train"] is False


def test_the_hook_gets_the_judges_structured_output_and_seed(tmp_path: Path) -> None:
    judge = JudgeSpec(endpoint="judge", model="qwen-plus", structured_output="grammar", seed=5,
                      extra_body={"top_k": 1})  # fmt: skip
    job = verl_config(paper_config(tmp_path, judge=judge), SETTINGS, run_id="7",
                      checkpoint_dir="/ck", experiment_name="e")  # fmt: skip
    extra = job["reward"]["custom_reward_function"]["reward_kwargs"]["judge_extra_body"]
    assert extra == {"top_k": 1, "grammar": VERDICT_GRAMMAR, "seed": 5}
    json_judge = JudgeSpec(endpoint="judge", structured_output="json_schema")
    with pytest.raises(ValueError, match="reads \\[\\[A\\]\\]"):
        verl_config(paper_config(tmp_path, judge=json_judge), SETTINGS, run_id="7",
                    checkpoint_dir="/ck", experiment_name="e")  # fmt: skip


def test_it_writes_grpo_with_groups_and_kl_as_a_loss(tmp_path: Path) -> None:
    job = verl_config(paper_config(tmp_path, kl_beta=0.01), SETTINGS, run_id="7",
                      checkpoint_dir="/ck", experiment_name="e", resume=True)  # fmt: skip
    assert job["algorithm"]["adv_estimator"] == "grpo" and job["critic"]["enable"] is False
    assert job["actor_rollout_ref"]["rollout"]["n"] == 8
    assert job["actor_rollout_ref"]["actor"]["use_kl_loss"] is True
    assert job["actor_rollout_ref"]["actor"]["kl_loss_coef"] == 0.01
    assert job["algorithm"]["use_kl_in_reward"] is False
    assert job["trainer"]["resume_mode"] == "auto"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"judge": JudgeSpec(endpoint="heuristic")}, "OpenAI-compatible judge"),
        ({"min_wins": 2}, "min_wins must be 1"),
        ({"reward_terms": {"length": 0.5}}, "reward_terms"),
        ({"algorithm": "sft"}, "does not run on verl"),
        ({"curriculum": "random"}, "curriculum must be 'dynamic'"),
    ],
)
def test_it_refuses_what_verl_cannot_run(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        verl_config(paper_config(tmp_path, **changes), SETTINGS, run_id="1",
                    checkpoint_dir="/ck", experiment_name="e")  # fmt: skip


def test_it_needs_the_internal_api_url(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="WRITING_RL_INTERNAL_API_URL"):
        verl_config(paper_config(tmp_path), VerlSettings(), run_id="1", checkpoint_dir="/c",
                    experiment_name="e")  # fmt: skip


def test_it_writes_a_job_directory_in_the_authors_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    job = build_job(paper_config(tmp_path), INSTRUCTIONS, SETTINGS, run_id="7",
                    job_dir=tmp_path / "job", token="internal-secret")  # fmt: skip
    rows = pq.read_table(job.job_dir / "train.parquet").to_pylist()
    assert [r["data_source"] for r in rows] == ["writing_rl", "writing_rl"]
    assert rows[0]["prompt"] == [{"role": "user", "content": "Write a fable."}]
    assert rows[0]["reward_model"]["ground_truth"] == {
        "id": "11", "prompt": "Write a fable.", "target": ["weak fable", "good fable"],
        "criteria": "Moral.",
    }  # fmt: skip
    assert rows[1]["extra_info"]["required_words"] == 300
    val = pq.read_table(job.job_dir / "val.parquet").to_pylist()
    assert {r["data_source"] for r in val} == {"writing_rl/eval"}
    written = yaml.safe_load((job.job_dir / "writing_rl_verl.yaml").read_text())
    assert written == job.config
    hook = (job.job_dir / "writing_rl_reward.py").read_text()
    assert "async def compute_score(" in hook and "import django" not in hook
    prompts = json.loads((job.job_dir / "judge_prompts.json").read_text())
    assert "[[A]]" in prompts["default"]["system"]
    # Secrets only in the owner-readable runtime env, never in the config or the command.
    runtime_env = json.loads(job.runtime_env_path.read_text())
    assert runtime_env["env_vars"]["WRITING_RL_INTERNAL_API_TOKEN"] == "internal-secret"
    assert runtime_env["env_vars"]["OPENAI_API_KEY"] == "sk-secret"
    assert stat.S_IMODE(job.runtime_env_path.stat().st_mode) == 0o600
    everything = json.dumps(job.config) + " ".join(job.submit_argv)
    assert "internal-secret" not in everything and "sk-secret" not in everything
    assert job.submit_argv[:3] == ["ray", "job", "submit"]
    assert f"--working-dir={job.job_dir}" in job.submit_argv
    assert job.submit_argv[job.submit_argv.index("--") + 1 :] == [
        "python3", "-m", "verl.trainer.main_ppo", "--config-dir=.",
        "--config-name=writing_rl_verl",
    ]  # fmt: skip


def test_it_reads_verls_console_metrics() -> None:
    line = ("(TaskRunner pid=42) step:3 - actor/pg_loss:-0.012 - critic/score/mean:0.625 - "
            "timing_s/step:41.5 - timing_s/gen:30.0 - actor/lr:1e-06 - name:x")  # fmt: skip
    step, values = parse_step_line(line)  # type: ignore[misc]
    assert step == 3 and values["critic/score/mean"] == 0.625 and "name" not in values
    metrics = step_metrics(step, values, "ppo")
    assert (metrics.reward_mean, metrics.loss, metrics.step_seconds) == (0.625, -0.012, 41.5)
    assert metrics.rollout_seconds == 30.0 and metrics.extra["actor/lr"] == 1e-6
    assert parse_step_line("Training Progress: 10%") is None


# -- following a job on a fake Ray ------------------------------------------------------------


class FakeRay:
    """A Ray dashboard's job API that walks one job through PENDING, RUNNING (a step per poll,
    a checkpoint folder every second step) and SUCCEEDED — or STOPPED when asked."""

    def __init__(self, steps: int, checkpoint_dir: Path) -> None:
        self.steps = steps
        self.checkpoint_dir = checkpoint_dir
        self.polls = 0
        self.stopped = False
        self.lines: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.endswith("/logs"):
                    self._send({"logs": "\n".join(fake.lines)})
                else:
                    self._send(fake.status())

            def do_POST(self) -> None:
                fake.stopped = True
                self._send({"stopped": True})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"

    def status(self) -> dict[str, Any]:
        self.polls += 1
        if self.stopped:
            return {"status": "STOPPED", "message": "stopped by user"}
        step = self.polls - 1
        if step == 0:
            return {"status": "PENDING"}
        if step <= self.steps:
            self.lines.append(f"step:{step} - critic/score/mean:{step / 10} - timing_s/step:2.0")
            if step % 2 == 0:
                (self.checkpoint_dir / f"global_step_{step}").mkdir(parents=True)
            return {"status": "RUNNING"}
        return {"status": "SUCCEEDED", "message": "done"}


@pytest.fixture
def fake_ray_cli(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    calls = tmp_path / "ray-calls.jsonl"
    script = tmp_path / "ray"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "workdir = next(a.split('=', 1)[1] for a in sys.argv if a.startswith('--working-dir='))\n"
        "files = sorted(os.listdir(workdir))\n"
        f"with open({str(calls)!r}, 'a') as f: f.write(json.dumps([sys.argv[1:], files]) + '\\n')\n"
        "print('Job submitted')\n"
    )
    script.chmod(0o755)
    yield script, calls


def run_verl(
    tmp_path: Path,
    ray_cli: Path,
    fake: FakeRay,
    reporter: InMemoryReporter,
    store: InMemoryStore | None = None,
    resume: bool = False,
) -> Any:
    if store is None:
        store = InMemoryStore({"11": 2, "12": 1})
        store.record_outcomes([StepOutcome("11", 1, 1, 0, 0, 0, True)])
    store.run_id = "7"  # type: ignore[attr-defined]
    settings = VerlSettings(
        api_url="http://studio:8000", ray_address=fake.address, ray_bin=str(ray_cli),
        checkpoint_dir=str(fake.checkpoint_dir), poll_interval_s=0.0,
    )  # fmt: skip
    from rl_engine.training import verl_backend

    result = verl_backend.train_verl(paper_config(tmp_path), INSTRUCTIONS, store, reporter,
                                     resume, settings=settings)  # fmt: skip
    return result, store


def test_it_submits_follows_and_reports_a_job_to_the_end(
    tmp_path: Path, fake_ray_cli: tuple[Path, Path]
) -> None:
    ray_cli, calls = fake_ray_cli
    fake = FakeRay(steps=4, checkpoint_dir=tmp_path / "ck")
    reporter = InMemoryReporter()
    result, _ = run_verl(tmp_path, ray_cli, fake, reporter)

    argv, files = json.loads(calls.read_text().splitlines()[0])
    assert argv[:2] == ["job", "submit"] and "--no-wait" in argv
    assert {"train.parquet", "val.parquet", "writing_rl_reward.py", "judge_prompts.json",
            "writing_rl_verl.yaml"} <= set(files)  # fmt: skip
    assert [m.step for m in reporter.steps] == [1, 2, 3, 4]
    assert reporter.steps[2].reward_mean == pytest.approx(0.3)
    assert [c.step for c in reporter.checkpoints] == [2, 4]
    assert reporter.checkpoints[0].tiers == {"11": 1, "12": 0}
    snapshot = tmp_path / "run" / "verl-curriculum" / "global_step_4.json"
    assert json.loads(snapshot.read_text())["11"]["tier"] == 1
    assert (result.steps, result.stopped) == (4, False)
    assert result.last_checkpoint == str(tmp_path / "ck" / "global_step_4")


def test_it_stops_the_job_when_the_reporter_asks(
    tmp_path: Path, fake_ray_cli: tuple[Path, Path]
) -> None:
    ray_cli, _ = fake_ray_cli
    fake = FakeRay(steps=50, checkpoint_dir=tmp_path / "ck")
    result, _ = run_verl(tmp_path, ray_cli, fake, InMemoryReporter(stop_after_step=2))
    assert fake.stopped and result.stopped
    assert result.steps < 5


def test_it_raises_with_rays_message_when_the_job_fails(
    tmp_path: Path, fake_ray_cli: tuple[Path, Path]
) -> None:
    ray_cli, _ = fake_ray_cli
    fake = FakeRay(steps=1, checkpoint_dir=tmp_path / "ck")
    fake.status = lambda: {"status": "FAILED", "message": "CUDA out of memory"}  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        run_verl(tmp_path, ray_cli, fake, InMemoryReporter())


def test_it_is_what_train_dispatches_to_for_backend_verl(tmp_path: Path) -> None:
    store = InMemoryStore({"11": 2, "12": 1})
    with pytest.raises(ValueError, match="run's id"):
        train(paper_config(tmp_path), INSTRUCTIONS, store, InMemoryReporter())


def test_it_rolls_the_curriculum_back_to_the_checkpoint_it_resumes_from(
    tmp_path: Path, fake_ray_cli: tuple[Path, Path]
) -> None:
    ray_cli, _ = fake_ray_cli
    fake = FakeRay(steps=0, checkpoint_dir=tmp_path / "ck")
    (tmp_path / "ck" / "global_step_2").mkdir(parents=True)
    store = InMemoryStore({"11": 2, "12": 1})
    # The tiers saved with checkpoint 2, then a step 3 whose win the resumed run will redo.
    store.record_outcomes([StepOutcome("11", 2, 0, 0, 1, 0, False)])
    snapshots = tmp_path / "run" / "verl-curriculum"
    snapshots.mkdir(parents=True)
    (snapshots / "global_step_2.json").write_text(json.dumps(dump_snapshot(store.snapshot())))
    store.record_outcomes([StepOutcome("11", 3, 1, 0, 0, 0, True)])
    assert store.read_tiers(["11"])["11"].tier == 1

    result, store = run_verl(tmp_path, ray_cli, fake, InMemoryReporter(), store, resume=True)
    assert store.read_tiers(["11"])["11"] == TierState(tier=0, num_tiers=2, mastered=False,
                                                       last_step=2)  # fmt: skip
    assert result.resumed_from == str(tmp_path / "ck")
    written = yaml.safe_load((tmp_path / "run" / "verl-job" / "writing_rl_verl.yaml").read_text())
    assert written["trainer"]["resume_mode"] == "auto"

    (snapshots / "global_step_2.json").unlink()
    with pytest.raises(FileNotFoundError, match="no curriculum snapshot"):
        run_verl(tmp_path, ray_cli, FakeRay(0, tmp_path / "ck"), InMemoryReporter(), store, True)
