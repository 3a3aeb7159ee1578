"""Fixtures shared by the whole suite."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _hf_offline() -> None:
    # There is no model hub here; fail fast instead of hanging on a download.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _test_model_roots(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests save tiny policies under pytest's temporary directory: make it a model root (for
    this process and the workers it starts), as a deployment lists its model directories."""
    from django.conf import settings

    base = tmp_path_factory.getbasetemp().resolve()
    roots = [str(p) for p in settings.WRITING_RL_MODEL_ROOTS]
    if str(base) not in roots:
        settings.WRITING_RL_MODEL_ROOTS.append(base)
        os.environ["WRITING_RL_MODEL_ROOTS"] = ",".join([*roots, str(base)])


@pytest.fixture(autouse=True)
def _heartbeat_sees_the_test_rows(request: pytest.FixtureRequest) -> Iterator[None]:
    """A run's or job's heartbeat beats on its own database connection, which cannot see the
    rows of a test inside a transaction that never commits: its first beat (every 20 s by
    default) would find no row and end the lease of anything that runs that long on a slow
    machine. Such tests get no beat within their lifetime; tests with committed rows
    (``transaction=True``, live servers, worker processes) keep the real interval, and a test
    that sets ``WRITING_RL_HEARTBEAT_S`` itself keeps its own."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(
        {"transactional_db", "live_server", "celery_worker_process"} & set(request.fixturenames)
        or (marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
    )
    if transactional or "WRITING_RL_HEARTBEAT_S" in os.environ:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WRITING_RL_HEARTBEAT_S", "3600")
        yield


def database_url_for_subprocess() -> str:
    """The URL of the database the tests use, for processes the tests start."""
    from django.db import connection

    cfg = connection.settings_dict
    if cfg["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{cfg['NAME']}"
    user = cfg.get("USER") or ""
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{cfg['HOST'] or '127.0.0.1'}:{cfg['PORT'] or 5432}/{cfg['NAME']}"


class WorkerProcess:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def celery_worker(
    tmp_path: Path, *, extra_args: Sequence[str] = (), extra_env: Mapping[str, str] | None = None
) -> Iterator[WorkerProcess]:
    """A real Celery worker process on all queues, sharing the tests' database and broker,
    stopped on exit. ``extra_args`` go on its command line (``-B`` adds beat)."""
    from django.conf import settings

    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        "WRITING_RL_VAR_DIR": str(settings.VAR_DIR),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "workers", "worker",
                "-Q", "gpu,judge,default", "--pool=solo", "--loglevel=INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--hostname", f"test-{os.getpid()}@%h", *extra_args,
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    worker = WorkerProcess(process, log_path)
    try:
        # A loaded machine may need longer to import torch: TEST_WORKER_START_S raises it.
        start_s = float(os.environ.get("TEST_WORKER_START_S", "60"))
        deadline = time.monotonic() + start_s
        while "ready." not in worker.log():
            if process.poll() is not None:
                pytest.fail(f"the Celery worker exited early:\n{worker.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not start in {start_s:g} s:\n{worker.log()}")
            time.sleep(0.2)
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def celery_worker_process(tmp_path: Path, transactional_db: None) -> Iterator[WorkerProcess]:
    """:func:`celery_worker` as a fixture. Tests using it see only committed data, hence
    ``transactional_db``."""
    with celery_worker(tmp_path) as worker:
        yield worker


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Playwright's sync API keeps an event loop running in the main thread for the rest of
    # the session once a browser starts, which breaks any later asyncio.run(): browser tests
    # go last.
    items.sort(key=lambda item: "tests/browser/" in item.nodeid)
