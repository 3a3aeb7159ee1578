"""What the fault tests share: real Celery worker processes with short timings, signals by
pid, a private Redis the tests may stop and restart, and waiting with a deadline.

Timings: a holder is presumed lost after ``WRITING_RL_RUN_STALE_S`` = 4 s without a heartbeat
(it beats every 0.5 s), beat sweeps every second, a waiting job whose message may be lost is
sent again 3 s after its last send, one never sent after 1 s; a worker session left idle inside
a transaction is ended by PostgreSQL after 10 s (a worker stopped inside a fenced write holds
its job's row lock until then).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from tests.conftest import WorkerProcess, celery_worker
from tests.services import missing, require_postgres, require_redis

FAST = {
    "WRITING_RL_RUN_STALE_S": "4",
    "WRITING_RL_HEARTBEAT_S": "0.5",
    "WRITING_RL_STALE_SWEEP_S": "1",
    "WRITING_RL_QUEUED_GRACE_S": "3",
    "WRITING_RL_UNSENT_GRACE_S": "1",
    "WRITING_RL_IDLE_TX_TIMEOUT_S": "10",
}


def require_services() -> None:
    """PostgreSQL (row locks, concurrent workers) and Redis (the broker the faults hit)."""
    require_postgres()
    require_redis()


@contextlib.contextmanager
def worker(
    tmp_path: Path,
    name: str,
    *,
    beat: bool = False,
    broker: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[WorkerProcess]:
    """A Celery worker process (solo pool: the pid that runs the task) with short timings,
    optionally running beat (the sweep every second) and on another broker."""
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    args = ["--hostname", f"{name}-{os.getpid()}@%h"]
    if beat:
        args += ["-B", "--schedule", str(folder / "beat-schedule")]
    extra = {**FAST, **(env or {})}
    if broker:
        extra |= {"CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker}
    with celery_worker(folder, extra_args=args, extra_env=extra) as process:
        try:
            yield process
        finally:
            # A stopped process would not see the SIGTERM that ends it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.process.pid, signal.SIGCONT)


def wait_for(
    predicate: Callable[[], object],
    what: str,
    *,
    timeout: float = 240,
    alive: tuple[WorkerProcess, ...] = (),
) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` (with the workers' logs)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        for process in alive:
            assert process.process.poll() is None, f"worker died:\n{process.log()[-4000:]}"
        if time.monotonic() > deadline:
            logs = "\n---\n".join(p.log()[-3000:] for p in alive)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own (no persistence: a restart loses every message)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return
            except Exception:
                assert time.monotonic() < deadline, "the private redis-server did not start"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    from shutil import which

    if which("redis-server") is None:
        missing("redis-server", "the binary is not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def sending_to(url: str) -> Iterator[None]:
    """Point this process's Celery app (the launch paths, the sweep) at broker ``url``."""
    from workers.celery_app import app

    def use(broker: str | None, write: str | None) -> None:
        app.conf.broker_url = broker
        app.conf.broker_write_url = write
        app._pool = None
        app.amqp._producer_pool = None

    before = (app.conf.broker_url, app.conf.broker_write_url)
    use(url, url)
    try:
        yield
    finally:
        use(*before)
