"""docker/compose.yaml, validated by Debian's docker-compose (1.29, no engine needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
ENV = {"SECRET_KEY": "k" * 50, "POSTGRES_PASSWORD": "pw", "WRITING_RL_INTERNAL_API_TOKEN": ""}


def compose_config(
    *profiles: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    binary = require_tool("docker-compose", "apt-get install docker-compose")
    args = [binary, "-f", str(COMPOSE)]
    for profile in profiles:
        args += ["--profile", profile]
    clean = {k: v for k, v in os.environ.items() if k not in ENV}
    return subprocess.run(
        [*args, "config"], env={**clean, **(env if env is not None else ENV)},
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = compose_config("gpu", "judge")
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = yaml.safe_load(result.stdout)
    return parsed


def test_it_is_a_valid_compose_file_with_every_service(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {
        "postgres", "redis", "web", "worker-default", "worker-judge", "worker-gpu-0",
        "worker-gpu-1", "vllm-judge", "beat",
    }  # fmt: skip
    assert {"pgdata", "redisdata", "runs", "media", "hf-cache"} <= set(config["volumes"])
    for name, service in config["services"].items():
        assert "healthcheck" in service, f"{name} has no health check"


def test_it_runs_the_entrypoint_commands_the_tests_run(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["web"]["command"] == ["web"]
    assert services["worker-default"]["command"] == ["worker", "default"]
    assert services["worker-judge"]["command"] == ["worker", "judge"]
    assert services["worker-judge"]["environment"]["WORKER_CONCURRENCY"] == "64"
    assert services["beat"]["command"] == ["beat"]
    assert services["beat"]["healthcheck"]["test"][-1] == "beat-healthcheck"
    assert "deploy" not in services["beat"]  # exactly one beat: never scaled out
    gpus = [services[f"worker-gpu-{i}"] for i in range(2)]
    assert [g["command"] for g in gpus] == [["worker", "gpu"]] * 2
    assert [g["environment"]["CUDA_VISIBLE_DEVICES"] for g in gpus] == ["0", "1"]
    for gpu in gpus:
        devices = gpu["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
    assert "runs:/app/var/runs" in " ".join(str(v) for v in services["web"]["volumes"]) or any(
        v.get("target") == "/app/var/runs"
        for v in services["web"]["volumes"]
        if isinstance(v, dict)
    )
    env = services["web"]["environment"]
    assert env["DJANGO_SETTINGS_MODULE"] == "webapp.settings_production"
    assert env["DATABASE_URL"] == "postgres://studio:pw@postgres:5432/studio"
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
    assert "healthz" in " ".join(services["web"]["healthcheck"]["test"])


def test_it_keeps_gpu_workers_and_the_judge_behind_profiles(config: dict[str, Any]) -> None:
    # (`config` lists every service; profiles decide what `up` starts.)
    profiles = {name: s.get("profiles", []) for name, s in config["services"].items()}
    assert profiles["worker-gpu-0"] == profiles["worker-gpu-1"] == ["gpu"]
    assert profiles["vllm-judge"] == ["judge"]
    assert not any(
        profiles[n] for n in ("postgres", "redis", "web", "worker-default", "worker-judge", "beat")
    )


def test_it_refuses_to_start_without_a_secret_key() -> None:
    result = compose_config(env={"POSTGRES_PASSWORD": "pw"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
