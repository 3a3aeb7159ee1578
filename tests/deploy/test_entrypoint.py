"""docker/entrypoint.sh, run here exactly as the containers run it: gunicorn serving the app
with production settings and whitenoise, and a judge-queue worker that /healthz can see."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import database_url_for_subprocess

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


OPS_TOKEN = "p" * 40


def get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def production_env(django_db_setup: None, django_db_blocker: Any) -> dict[str, str]:
    from django.conf import settings

    with django_db_blocker.unblock():
        database_url = database_url_for_subprocess()
    return {
        **os.environ,
        "PYTHON": sys.executable,
        "DJANGO_SETTINGS_MODULE": "webapp.settings_production",
        "SECRET_KEY": "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        "WRITING_RL_VAR_DIR": str(settings.VAR_DIR),
        "WRITING_RL_HEALTHZ_PING_TIMEOUT_S": "2",
        "WRITING_RL_OPS_TOKEN": OPS_TOKEN,
        "WEB_WORKERS": "1",
        "WORKER_CONCURRENCY": "4",
        "WORKER_NAME": f"entrypoint-{os.getpid()}",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="module")
def web(
    production_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Process]]:
    port = free_port()
    env = {**production_env, "BIND": f"127.0.0.1:{port}"}
    log = tmp_path_factory.mktemp("web") / "web.log"
    process = Process([str(ENTRYPOINT), "web"], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if get(f"{base}/healthz?checks=database")[0] == 200:
                    break
            except OSError:
                pass
            if process.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the web container command did not come up:\n{process.log()}")
            time.sleep(0.5)
        yield base, process
    finally:
        process.stop()


def test_it_serves_the_app_static_files_and_health_with_production_settings(
    web: tuple[str, Process], production_env: dict[str, str], tmp_path: Path
) -> None:
    base, _ = web
    status, body = get(f"{base}/healthz?checks=database,broker")
    assert status == 200, body
    # Static files through whitenoise (collected by the entrypoint), with a long cache life.
    with urllib.request.urlopen(f"{base}/static/admin/css/base.css", timeout=10) as response:
        assert response.status == 200
    # The container health check command.
    ok = subprocess.run([str(ENTRYPOINT), "healthcheck", f"{base}/healthz?checks=database"],
                        env=production_env, capture_output=True, timeout=60)  # fmt: skip
    assert ok.returncode == 0
    bad = subprocess.run([str(ENTRYPOINT), "healthcheck", f"{base}/healthz?checks=nope"],
                         env=production_env, capture_output=True, timeout=60)  # fmt: skip
    assert bad.returncode != 0


def test_it_starts_a_judge_worker_that_healthz_sees(
    web: tuple[str, Process], production_env: dict[str, str], tmp_path: Path
) -> None:
    base, _ = web
    worker = Process([str(ENTRYPOINT), "worker", "judge"], production_env, tmp_path / "w.log")
    try:
        deadline = time.monotonic() + 90
        while "ready." not in worker.log():
            if worker.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the judge worker did not start:\n{worker.log()}")
            time.sleep(0.3)
        # Anonymous: the status only; with the ops token: the workers' names.
        status, body = get(f"{base}/healthz")
        assert status == 200, body
        assert json.loads(body) == {"status": "ok"}
        status, body = get(f"{base}/healthz", token=OPS_TOKEN)
        assert status == 200, body
        names = json.loads(body)["checks"]["workers"]["names"]
        assert any(n.startswith(f"judge-{production_env['WORKER_NAME']}@") for n in names)
        # Its log lines are JSON (production logging).
        json_lines = [line for line in worker.log().splitlines() if line.startswith("{")]
        assert any(json.loads(line).get("level") for line in json_lines)
    finally:
        worker.stop()


def test_it_runs_beat_which_sends_the_stale_run_sweep_and_reports_its_health(
    production_env: dict[str, str], tmp_path: Path
) -> None:
    schedule = tmp_path / "celerybeat-schedule"
    env = {**production_env, "BEAT_SCHEDULE_FILE": str(schedule), "WRITING_RL_STALE_SWEEP_S": "1"}
    healthcheck = [str(ENTRYPOINT), "beat-healthcheck"]
    before = subprocess.run(healthcheck, env=env, capture_output=True, timeout=60)
    assert before.returncode == 1  # no schedule saved yet: not healthy
    beat = Process([str(ENTRYPOINT), "beat"], env, tmp_path / "beat.log")
    try:
        deadline = time.monotonic() + 90
        while "recover-lost-work" not in beat.log():
            if beat.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"beat did not send the sweep:\n{beat.log()}")
            time.sleep(0.3)
        after = subprocess.run(healthcheck, env=env, capture_output=True, timeout=60)
        assert after.returncode == 0, after.stderr
    finally:
        beat.stop()
        # Beat only sent messages; leave no sweep behind for other tests' workers.
        from workers.celery_app import app

        app.control.purge()


def test_it_refuses_an_unknown_queue(production_env: dict[str, str]) -> None:
    result = subprocess.run([str(ENTRYPOINT), "worker", "everything"], env=production_env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 64 and "unknown queue" in result.stderr
