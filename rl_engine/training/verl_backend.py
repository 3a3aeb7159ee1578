"""The verl backend: PPO with a GAE critic (the paper's setting), GRPO or RLOO on a Ray cluster.

``train_verl(config, instructions, store, reporter, resume_from)`` does not train in this
process. It writes a *job directory* — the dataset as parquet in the Writing-RL authors' row
format, a verl config, the reward hook (``verl_plugin/writing_rl_reward.py``) and the judge's
prompt templates — submits it with ``ray job submit`` and follows the job through the Ray
dashboard's REST API until it ends: verl's per-step console metrics become ``StepMetrics``,
its checkpoints ``CheckpointInfo`` (with the curriculum tiers of that moment), and
``reporter.should_stop()`` stops the job. The reward hook reaches the curriculum and stores its
judgments through the web app's internal API, so the dashboard shows the run as it shows a TRL
run.

Deployment settings come from the environment (:class:`VerlSettings`); the run's own settings
from ``TrainConfig``: ``algorithm`` "ppo" -> GAE critic, one rollout per prompt (verl's PPO
setting); "grpo" / "rloo" -> ``num_generations`` rollouts per prompt, KL as a loss term.
``prompts_per_step`` is verl's ``train_batch_size`` (the paper: 32), ``max_completion_tokens``
its response length (the paper: up to 10k), ``learning_rate`` and ``kl_beta`` as named (the
paper: 1e-6 and 0.001).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from rl_engine.curriculum import CurriculumStore, dump_snapshot, load_snapshot
from rl_engine.judging.endpoints import structured_body
from rl_engine.judging.prompts import DEFAULT_PROMPTS
from rl_engine.training.config import TrainConfig
from rl_engine.training.reporter import Reporter
from rl_engine.training.types import CheckpointInfo, StepMetrics, TrainingInstruction, TrainResult

__all__ = [
    "ESTIMATORS",
    "EVAL_SOURCE",
    "HOOK_SOURCE",
    "TRAIN_SOURCE",
    "RayJobs",
    "VerlJob",
    "VerlSettings",
    "build_job",
    "dataset_rows",
    "follow",
    "parse_step_line",
    "train_verl",
    "verl_config",
]

TRAIN_SOURCE = "writing_rl"
EVAL_SOURCE = "writing_rl/eval"
# TrainConfig.algorithm -> verl's algorithm.adv_estimator.
ESTIMATORS = {"ppo": "gae", "grpo": "grpo", "rloo": "rloo"}
# The hook ships in the repository's verl_plugin/; WRITING_RL_VERL_HOOK points elsewhere (e.g.
# in an image that installs the package without the repository).
HOOK_SOURCE = Path(
    os.environ.get(
        "WRITING_RL_VERL_HOOK",
        Path(__file__).resolve().parents[2] / "verl_plugin" / "writing_rl_reward.py",
    )
)
HOOK_FILE = "writing_rl_reward.py"
PROMPTS_FILE = "judge_prompts.json"
CONFIG_NAME = "writing_rl_verl"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
_CHECKPOINT_DIR = re.compile(r"^global_step_(\d+)$")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be an integer") from None


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be a number") from None


@dataclass
class VerlSettings:
    """Where and how verl jobs run: the cluster, not the run (see :meth:`from_env`)."""

    api_url: str = ""
    ray_address: str = "http://127.0.0.1:8265"
    ray_bin: str = "ray"
    python: str = "python3"
    nnodes: int = 1
    gpus_per_node: int = 8
    rollout_tensor_parallel: int = 2
    gpu_memory_utilization: float = 0.6
    max_prompt_tokens: int = 2048
    critic_learning_rate: float = 1e-5
    reward_workers: int = 8
    checkpoint_dir: str = ""
    save_every: int | None = None
    poll_interval_s: float = 15.0
    eval_samples: int = 32
    judge_base_url: str = ""

    @classmethod
    def from_env(cls) -> VerlSettings:
        """``WRITING_RL_INTERNAL_API_URL`` (the web app as the cluster reaches it),
        ``WRITING_RL_RAY_ADDRESS``, ``WRITING_RL_RAY_BIN``, ``WRITING_RL_VERL_PYTHON``,
        ``WRITING_RL_VERL_NNODES``, ``WRITING_RL_VERL_GPUS_PER_NODE``,
        ``WRITING_RL_VERL_ROLLOUT_TP``,
        ``WRITING_RL_VERL_GPU_MEMORY_UTILIZATION``, ``WRITING_RL_VERL_MAX_PROMPT_TOKENS``,
        ``WRITING_RL_VERL_CRITIC_LR``, ``WRITING_RL_VERL_REWARD_WORKERS``,
        ``WRITING_RL_VERL_CHECKPOINT_DIR`` (shared by the cluster and this machine),
        ``WRITING_RL_VERL_POLL_S`` and ``WRITING_RL_VERL_JUDGE_BASE_URL`` (the judge as the
        cluster reaches it, when it differs from the run's)."""
        return cls(
            api_url=os.environ.get("WRITING_RL_INTERNAL_API_URL", ""),
            ray_address=os.environ.get("WRITING_RL_RAY_ADDRESS", cls.ray_address),
            ray_bin=os.environ.get("WRITING_RL_RAY_BIN", cls.ray_bin),
            python=os.environ.get("WRITING_RL_VERL_PYTHON", cls.python),
            nnodes=_env_int("WRITING_RL_VERL_NNODES", cls.nnodes),
            gpus_per_node=_env_int("WRITING_RL_VERL_GPUS_PER_NODE", cls.gpus_per_node),
            rollout_tensor_parallel=_env_int(
                "WRITING_RL_VERL_ROLLOUT_TP", cls.rollout_tensor_parallel
            ),
            gpu_memory_utilization=_env_float(
                "WRITING_RL_VERL_GPU_MEMORY_UTILIZATION", cls.gpu_memory_utilization
            ),
            max_prompt_tokens=_env_int("WRITING_RL_VERL_MAX_PROMPT_TOKENS", cls.max_prompt_tokens),
            critic_learning_rate=_env_float("WRITING_RL_VERL_CRITIC_LR", cls.critic_learning_rate),
            reward_workers=_env_int("WRITING_RL_VERL_REWARD_WORKERS", cls.reward_workers),
            checkpoint_dir=os.environ.get("WRITING_RL_VERL_CHECKPOINT_DIR", ""),
            poll_interval_s=_env_float("WRITING_RL_VERL_POLL_S", cls.poll_interval_s),
            judge_base_url=os.environ.get("WRITING_RL_VERL_JUDGE_BASE_URL", ""),
        )


# -- the dataset -----------------------------------------------------------------------------


def dataset_rows(
    instructions: Sequence[TrainingInstruction], data_source: str = TRAIN_SOURCE
) -> list[dict[str, Any]]:
    """Rows in the Writing-RL authors' verl format: ``data_source``, ``prompt`` (chat
    messages), ``ability``, ``reward_model.ground_truth`` = ``{id, prompt, target: [references,
    weakest first], criteria}`` and ``extra_info``."""
    return [
        {
            "data_source": data_source,
            "prompt": [{"role": "user", "content": instruction.prompt}],
            "ability": "writing",
            "reward_model": {
                "style": "model",
                "ground_truth": {
                    "id": instruction.sample_id,
                    "prompt": instruction.prompt,
                    "target": list(instruction.references),
                    "criteria": instruction.criteria,
                },
            },
            "extra_info": {
                "index": index,
                "sample_id": instruction.sample_id,
                "required_words": instruction.required_words,
            },
        }
        for index, instruction in enumerate(instructions)
    ]


def _write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(rows), path)


# -- the verl config ---------------------------------------------------------------------------


def estimator_for(config: TrainConfig) -> str:
    if config.backend != "verl":
        raise ValueError(
            f"TrainConfig.backend is {config.backend!r}; the verl backend needs 'verl'"
        )
    if config.algorithm not in ESTIMATORS:
        raise ValueError(
            f"TrainConfig.algorithm={config.algorithm!r} does not run on verl; choose one of "
            f"{', '.join(ESTIMATORS)} (ppo = PPO with a GAE critic, the paper's setting)"
        )
    if config.min_wins != 1:
        raise ValueError(
            "TrainConfig.min_wins must be 1 on verl: its reward workers score each rollout on "
            "its own, so a sample moves up on its first win of a step; use backend='trl' for "
            "min_wins > 1"
        )
    if config.curriculum != "dynamic":
        raise ValueError(
            "TrainConfig.curriculum must be 'dynamic' on verl (static and random curricula run "
            "on backend='trl')"
        )
    if config.reward_kind != "pairwise":
        raise ValueError(
            "TrainConfig.reward_kind must be 'pairwise' on verl (its reward hook judges pairs); "
            "run the pointwise baseline on backend='trl'"
        )
    if config.reward_terms:
        raise ValueError(
            "TrainConfig.reward_terms are not supported on verl yet: the reward hook computes the "
            "pairwise reward only; remove them or use backend='trl'"
        )
    return ESTIMATORS[config.algorithm]


def _policy_path(config: TrainConfig) -> str:
    # The cluster needs an HF checkpoint path or hub id it can read; names registered by
    # rl_engine.models (GGUF conversions) live on this machine only.
    return config.policy


def verl_config(
    config: TrainConfig,
    settings: VerlSettings,
    *,
    run_id: str,
    checkpoint_dir: str,
    experiment_name: str,
    resume: bool = False,
) -> dict[str, Any]:
    """The verl job config (a Hydra config on top of verl's ``ppo_trainer``), as a dict."""
    estimator = estimator_for(config)
    ppo = estimator == "gae"
    rollouts_per_prompt = 1 if ppo else config.num_generations
    max_tokens = settings.max_prompt_tokens + config.max_completion_tokens
    judge = config.judge
    resolved = judge.resolve()
    if resolved.kind != "openai":
        raise ValueError(
            f"TrainConfig.judge.endpoint is {judge.endpoint!r} ({resolved.kind}); the verl "
            "reward hook needs an OpenAI-compatible judge endpoint, e.g. the compose file's "
            "vLLM judge"
        )
    judge_base_url = settings.judge_base_url or resolved.base_url
    if resolved.structured_output == "json_schema":
        raise ValueError(
            "TrainConfig.judge.structured_output 'json_schema' makes the judge answer JSON; the "
            "verl reward hook reads [[A]]/[[B]]/[[C]] tags: use 'grammar', 'guided_choice' or "
            "'none'"
        )
    judge_extra_body = {
        **resolved.extra_body,
        **structured_body(resolved.structured_output, "verdict"),
        **({"seed": judge.seed} if judge.seed is not None else {}),
    }
    if not settings.api_url:
        raise ValueError(
            "WRITING_RL_INTERNAL_API_URL is not set: the verl reward hook needs the web app's URL "
            "as the Ray cluster reaches it, e.g. http://studio.internal:8000"
        )
    use_kl_loss = not ppo and config.kl_beta > 0
    save_every = settings.save_every or config.checkpoint_every or -1
    return {
        "hydra": {"searchpath": ["pkg://verl.trainer.config"]},
        "defaults": ["ppo_trainer", "_self_"],
        "data": {
            "train_files": "train.parquet",
            "val_files": "val.parquet",
            "prompt_key": "prompt",
            "train_batch_size": config.prompts_per_step,
            "max_prompt_length": settings.max_prompt_tokens,
            "max_response_length": config.max_completion_tokens,
            "filter_overlong_prompts": True,
            "truncation": "error",
            "seed": config.seed,
        },
        "actor_rollout_ref": {
            "model": {
                "path": _policy_path(config),
                "use_remove_padding": True,
                "enable_gradient_checkpointing": True,
            },
            "actor": {
                "optim": {"lr": config.learning_rate},
                "ppo_mini_batch_size": config.prompts_per_step,
                "use_dynamic_bsz": True,
                "ppo_max_token_len_per_gpu": max_tokens,
                "use_kl_loss": use_kl_loss,
                "kl_loss_coef": config.kl_beta,
                "kl_loss_type": "low_var_kl",
            },
            "rollout": {
                "name": "vllm",
                "mode": "async",
                "n": rollouts_per_prompt,
                "temperature": config.temperature,
                "top_p": config.top_p,
                "tensor_model_parallel_size": settings.rollout_tensor_parallel,
                "gpu_memory_utilization": settings.gpu_memory_utilization,
                "log_prob_use_dynamic_bsz": True,
                "log_prob_max_token_len_per_gpu": max_tokens,
            },
            "ref": {
                "log_prob_use_dynamic_bsz": True,
                "log_prob_max_token_len_per_gpu": max_tokens,
            },
        },
        "critic": {
            "enable": ppo,
            "optim": {"lr": settings.critic_learning_rate},
            "model": {"path": _policy_path(config), "enable_gradient_checkpointing": True},
            "use_dynamic_bsz": True,
            "ppo_max_token_len_per_gpu": max_tokens,
        },
        "algorithm": {
            "adv_estimator": estimator,
            # PPO: KL against the reference as a per-token reward penalty (fixed coefficient);
            # GRPO/RLOO: KL as a loss term instead.
            "use_kl_in_reward": ppo and config.kl_beta > 0,
            "kl_ctrl": {"type": "fixed", "kl_coef": config.kl_beta},
        },
        "reward": {
            "num_workers": settings.reward_workers,
            "reward_manager": {"source": "register", "name": "naive"},
            "custom_reward_function": {
                "path": HOOK_FILE,
                "name": "compute_score",
                "reward_kwargs": {
                    "api_url": settings.api_url,
                    "run_id": run_id,
                    "judge_base_url": judge_base_url,
                    "judge_model": resolved.model,
                    "judge_api_key_env": resolved.endpoint.api_key_env,
                    "position": config.reward_position,
                    "prompts_file": PROMPTS_FILE,
                    "max_concurrency": judge.max_concurrency,
                    "timeout_s": float(judge.timeout_s),
                    "max_retries": judge.max_retries,
                    "judge_extra_body": judge_extra_body,
                    # The TRL trainer's outage hold, per judgment in the hook (a step waits
                    # for its judgments, so it waits too); spent, it fails the verl job.
                    "judge_outage_budget_s": float(config.judge_outage_budget_s),
                },
            },
        },
        "trainer": {
            "project_name": "writing-rl",
            "experiment_name": experiment_name,
            "logger": ["console"],
            "nnodes": settings.nnodes,
            "n_gpus_per_node": settings.gpus_per_node,
            "total_training_steps": config.max_steps,
            "total_epochs": 1_000_000,  # total_training_steps ends the run
            "save_freq": save_every,
            "test_freq": -1,
            "val_before_train": False,
            "default_local_dir": checkpoint_dir,
            "resume_mode": "auto" if resume else "disable",
            "max_actor_ckpt_to_keep": config.keep_checkpoints,
            "max_critic_ckpt_to_keep": config.keep_checkpoints,
        },
    }


def judge_prompts() -> dict[str, dict[str, str]]:
    """The judge's templates, for the hook (one source of truth: rl_engine.judging.prompts)."""
    return {
        "default": {"system": DEFAULT_PROMPTS.default.system, "user": DEFAULT_PROMPTS.default.user},
        "with_criteria": {
            "system": DEFAULT_PROMPTS.with_criteria.system,
            "user": DEFAULT_PROMPTS.with_criteria.user,
        },
        "identity": {"value": DEFAULT_PROMPTS.identity},
    }


# -- the job -------------------------------------------------------------------------------------


@dataclass
class VerlJob:
    """A job directory ready to submit (``working_dir`` of the Ray job)."""

    job_dir: Path
    submission_id: str
    checkpoint_dir: str
    config: dict[str, Any]
    entrypoint: list[str]
    runtime_env_path: Path
    submit_argv: list[str] = field(default_factory=list)


def build_job(
    config: TrainConfig,
    instructions: Sequence[TrainingInstruction],
    settings: VerlSettings,
    *,
    run_id: str,
    job_dir: Path,
    resume: bool = False,
    token: str | None = None,
) -> VerlJob:
    """Write the job directory and return how to submit it.

    ``token`` (default: ``WRITING_RL_INTERNAL_API_TOKEN`` from the environment) goes into the
    job's runtime environment file only, readable by its owner, never into the verl config.
    """
    if not instructions:
        raise ValueError("no training instructions: a verl job needs at least one")
    job_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_dir = settings.checkpoint_dir or str(Path(config.output_dir).resolve() / "verl")
    experiment = f"run-{run_id}"
    job_config = verl_config(
        config,
        settings,
        run_id=run_id,
        checkpoint_dir=checkpoint_dir,
        experiment_name=experiment,
        resume=resume,
    )
    _write_parquet(dataset_rows(instructions), job_dir / "train.parquet")
    _write_parquet(
        dataset_rows(instructions[: max(1, settings.eval_samples)], EVAL_SOURCE),
        job_dir / "val.parquet",
    )
    shutil.copyfile(HOOK_SOURCE, job_dir / HOOK_FILE)
    (job_dir / PROMPTS_FILE).write_text(json.dumps(judge_prompts(), indent=2), encoding="utf-8")
    (job_dir / f"{CONFIG_NAME}.yaml").write_text(
        "# Written by rl_engine.training.verl_backend; verl composes it over ppo_trainer.\n"
        + yaml.safe_dump(job_config, sort_keys=False),
        encoding="utf-8",
    )
    token = os.environ.get("WRITING_RL_INTERNAL_API_TOKEN", "") if token is None else token
    env_vars = {"WRITING_RL_INTERNAL_API_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    key_env = config.judge.resolve().endpoint.api_key_env
    if key_env and os.environ.get(key_env):
        env_vars[key_env] = os.environ[key_env]
    runtime_env_path = job_dir.parent / f"{job_dir.name}.runtime_env.yaml"
    runtime_env_path.write_text(json.dumps({"env_vars": env_vars}), encoding="utf-8")
    runtime_env_path.chmod(0o600)
    submission_id = f"writing-rl-run-{run_id}-{int(time.time())}"
    entrypoint = [
        settings.python, "-m", "verl.trainer.main_ppo",
        "--config-dir=.", f"--config-name={CONFIG_NAME}",
    ]  # fmt: skip
    submit_argv = [
        settings.ray_bin, "job", "submit",
        f"--address={settings.ray_address}",
        f"--submission-id={submission_id}",
        f"--working-dir={job_dir}",
        f"--runtime-env={runtime_env_path}",
        "--no-wait",
        "--", *entrypoint,
    ]  # fmt: skip
    return VerlJob(
        job_dir=job_dir,
        submission_id=submission_id,
        checkpoint_dir=checkpoint_dir,
        config=job_config,
        entrypoint=entrypoint,
        runtime_env_path=runtime_env_path,
        submit_argv=submit_argv,
    )


# -- Ray: submit with the CLI (it uploads the working dir), follow through the REST API ------


class RayJobs:
    """``ray job submit`` through the CLI; status, logs and stop through the dashboard's REST
    API (``/api/jobs/<id>``), which needs no Ray installation on this machine."""

    def __init__(self, address: str, timeout_s: float = 30.0) -> None:
        self.address = address.rstrip("/")
        self.timeout_s = timeout_s

    def submit(self, job: VerlJob) -> str:
        result = subprocess.run(
            job.submit_argv, capture_output=True, text=True, timeout=600, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"`ray job submit` failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}"
            )
        return job.submission_id

    def _call(self, method: str, path: str) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.address}{path}", method=method)
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            body: dict[str, Any] = json.loads(response.read().decode("utf-8"))
            return body

    def status(self, submission_id: str) -> tuple[str, str]:
        info = self._call("GET", f"/api/jobs/{submission_id}")
        return str(info.get("status", "")), str(info.get("message") or "")

    def logs(self, submission_id: str) -> str:
        return str(self._call("GET", f"/api/jobs/{submission_id}/logs").get("logs", ""))

    def stop(self, submission_id: str) -> bool:
        return bool(self._call("POST", f"/api/jobs/{submission_id}/stop").get("stopped", False))


# -- following the job ---------------------------------------------------------------------------

_STEP_LINE = re.compile(r"(?:^|\s)step:(\d+) - (.+)$")


def parse_step_line(line: str) -> tuple[int, dict[str, float]] | None:
    """verl's console logger line ``step:N - key:value - ...`` as (N, {key: value})."""
    match = _STEP_LINE.search(line.strip())
    if match is None:
        return None
    values: dict[str, float] = {}
    for part in match.group(2).split(" - "):
        key, sep, raw = part.rpartition(":")
        if not sep:
            continue
        try:
            values[key.strip()] = float(raw)
        except ValueError:
            continue
    return int(match.group(1)), values


def step_metrics(step: int, values: Mapping[str, float], algorithm: str) -> StepMetrics:
    """Our StepMetrics from verl's metric names (all of verl's numbers kept in ``extra``)."""

    def pick(*names: str) -> float | None:
        for name in names:
            if name in values:
                return values[name]
        return None

    update = (values.get("timing_s/update_actor") or 0.0) + (
        values.get("timing_s/update_critic") or 0.0
    )
    return StepMetrics(
        step=step,
        algorithm=algorithm,
        loss=pick("actor/pg_loss"),
        kl=pick("actor/kl_loss", "actor/ppo_kl"),
        learning_rate=pick("actor/lr"),
        reward_mean=pick("critic/score/mean"),
        pairwise_reward_mean=pick("critic/score/mean"),
        rollout_seconds=pick("timing_s/gen") or 0.0,
        update_seconds=update,
        step_seconds=pick("timing_s/step") or 0.0,
        rollout_tokens_per_s=pick("perf/throughput"),
        extra=dict(values),
    )


def _checkpoint_steps(checkpoint_dir: str) -> list[int]:
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return []
    steps = [_CHECKPOINT_DIR.match(entry.name) for entry in folder.iterdir() if entry.is_dir()]
    return sorted(int(m.group(1)) for m in steps if m)


def follow(
    job: VerlJob,
    jobs: RayJobs,
    reporter: Reporter,
    store: CurriculumStore,
    *,
    algorithm: str,
    snapshots_dir: Path,
    poll_interval_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, str, bool, int]:
    """Poll the job until it ends; returns (status, message, stopped, last step seen).

    Each new ``step:N`` line is reported once; each new ``global_step_N`` checkpoint folder
    (when the checkpoint directory is shared with this machine) is reported with the
    curriculum's tiers at that moment, which are also saved for a resume.
    """
    reported_steps: set[int] = set()
    reported_checkpoints = set(_checkpoint_steps(job.checkpoint_dir))
    stopped = False
    last_step = 0
    snapshots_dir.mkdir(parents=True, exist_ok=True)
    while True:
        status, message = jobs.status(job.submission_id)
        for line in jobs.logs(job.submission_id).splitlines():
            parsed = parse_step_line(line)
            if parsed is None or parsed[0] in reported_steps:
                continue
            step, values = parsed
            reported_steps.add(step)
            last_step = max(last_step, step)
            reporter.on_step(step_metrics(step, values, algorithm))
        for step in _checkpoint_steps(job.checkpoint_dir):
            if step in reported_checkpoints:
                continue
            reported_checkpoints.add(step)
            snapshot = store.snapshot()
            (snapshots_dir / f"global_step_{step}.json").write_text(
                json.dumps(dump_snapshot(snapshot)), encoding="utf-8"
            )
            reporter.on_checkpoint(
                CheckpointInfo(
                    step=step,
                    path=str(Path(job.checkpoint_dir) / f"global_step_{step}"),
                    tiers={sid: state.tier for sid, state in snapshot.items()},
                )
            )
        if status in TERMINAL:
            return status, message, stopped, last_step
        if not stopped and reporter.should_stop():
            jobs.stop(job.submission_id)
            stopped = True
        sleep(poll_interval_s)


def _restore_for_resume(store: CurriculumStore, checkpoint_dir: str, snapshots_dir: Path) -> None:
    """Roll the curriculum back to the tiers saved with verl's newest checkpoint."""
    steps = _checkpoint_steps(checkpoint_dir)
    if not steps:
        return
    path = snapshots_dir / f"global_step_{steps[-1]}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"verl checkpoint global_step_{steps[-1]} has no curriculum snapshot at {path}; "
            "the tiers of that step are unknown, so resuming would let samples advance twice"
        )
    store.restore(load_snapshot(json.loads(path.read_text(encoding="utf-8")), str(path)))


def train_verl(
    config: TrainConfig,
    instructions: Sequence[TrainingInstruction],
    store: CurriculumStore,
    reporter: Reporter,
    resume_from: str | os.PathLike[str] | bool | None = None,
    *,
    settings: VerlSettings | None = None,
    jobs: RayJobs | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> TrainResult:
    """Write, submit and follow a verl job for ``config``; see the module docstring.

    The run id given to the reward hook is ``store.run_id`` (the web app's store has one) or
    ``WRITING_RL_RUN_ID``. ``resume_from`` (any truthy value) lets verl resume from its newest
    checkpoint and rolls the curriculum back to the tiers saved with it. Raises RuntimeError
    when the job fails, with Ray's message.
    """
    settings = settings or VerlSettings.from_env()
    run_id = str(getattr(store, "run_id", "") or os.environ.get("WRITING_RL_RUN_ID", ""))
    if not run_id:
        raise ValueError(
            "the verl backend needs the run's id for the reward hook: use the web app's "
            "curriculum store or set WRITING_RL_RUN_ID"
        )
    run_dir = Path(config.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    snapshots_dir = run_dir / "verl-curriculum"
    job = build_job(
        config,
        instructions,
        settings,
        run_id=run_id,
        job_dir=run_dir / "verl-job",
        resume=bool(resume_from),
    )
    resumed = bool(resume_from) and bool(_checkpoint_steps(job.checkpoint_dir))
    if resumed:
        _restore_for_resume(store, job.checkpoint_dir, snapshots_dir)
    jobs = jobs or RayJobs(settings.ray_address)
    jobs.submit(job)
    (run_dir / "verl-submission.json").write_text(
        json.dumps({"submission_id": job.submission_id, "argv": job.submit_argv}, indent=2),
        encoding="utf-8",
    )
    status, message, stopped, last_step = follow(
        job,
        jobs,
        reporter,
        store,
        algorithm=config.algorithm,
        snapshots_dir=snapshots_dir,
        poll_interval_s=settings.poll_interval_s,
        sleep=sleep,
    )
    if status == "FAILED" or (status == "STOPPED" and not stopped):
        raise RuntimeError(f"verl job {job.submission_id} ended {status}: {message}")
    checkpoints = _checkpoint_steps(job.checkpoint_dir)
    last_checkpoint = (
        str(Path(job.checkpoint_dir) / f"global_step_{checkpoints[-1]}") if checkpoints else None
    )
    return TrainResult(
        run_dir=str(run_dir),
        steps=last_step,
        stopped=stopped,
        model_dir=last_checkpoint or "",
        last_checkpoint=last_checkpoint,
        final_tiers={sid: state.tier for sid, state in store.snapshot().items()},
        resumed_from=job.checkpoint_dir if resumed else None,
    )
