"""Health checks: can the web app reach its database, its broker, and a live worker?

Each check returns a :class:`CheckResult` and never raises; ``run_checks`` runs the ones asked
for. The worker check is a Celery ``ping`` broadcast with a short timeout, so ``/healthz``
answers in about a second even when no worker listens.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection

from workers.celery_app import app

CHECKS = ("database", "broker", "workers")


@dataclass
class CheckResult:
    ok: bool
    latency_ms: float
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"ok": self.ok, "latency_ms": round(self.latency_ms, 1)}
        payload.update(self.detail)
        if self.error:
            payload["error"] = self.error
        return payload


def _timed(check: Callable[[], dict[str, Any]]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as error:
        return CheckResult(False, (time.perf_counter() - started) * 1000, error=_describe(error))
    return CheckResult(True, (time.perf_counter() - started) * 1000, detail)


def _describe(error: BaseException) -> str:
    from webapp.ops.security import redact

    return redact(f"{type(error).__name__}: {error}")[:500]


def check_database() -> CheckResult:
    def probe() -> dict[str, Any]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"vendor": connection.vendor}

    return _timed(probe)


def _broker_url() -> str:
    return str(settings.CELERY_BROKER_URL)


def check_broker() -> CheckResult:
    def probe() -> dict[str, Any]:
        url = _broker_url()
        if url.startswith("filesystem://"):
            options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
            for key in ("data_folder_in", "control_folder"):
                folder = options[key]
                if not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
                    raise OSError(f"broker folder {folder} is missing or not writable")
            return {"transport": "filesystem"}
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
        return {"transport": "redis"}

    return _timed(probe)


_worker_cache: tuple[float, str, CheckResult] | None = None
_worker_cache_lock = threading.Lock()


def check_workers_cached() -> CheckResult:
    """:func:`check_workers`, its answer kept ``WRITING_RL_HEALTHZ_CACHE_S`` seconds per process
    (a ping waits up to a second; a monitor polling /healthz should not wait each time)."""
    global _worker_cache
    keep_s = float(getattr(settings, "WRITING_RL_HEALTHZ_CACHE_S", 5.0))
    broker = _broker_url()
    with _worker_cache_lock:
        now = time.monotonic()
        if (
            keep_s > 0
            and _worker_cache is not None
            and _worker_cache[1] == broker
            and now - _worker_cache[0] < keep_s
        ):
            return _worker_cache[2]
        result = check_workers()
        _worker_cache = (time.monotonic(), broker, result)
        return result


NO_WORKER = "no Celery worker answered a ping"


def check_workers(timeout_s: float | None = None) -> CheckResult:
    """Ask every worker which queues it consumes (Celery's ``active_queues``, answered like a
    ping by each live worker); ok when at least one answers within ``timeout_s``. The detail
    names the workers and, per queue, the workers that serve it."""
    if timeout_s is None:
        timeout_s = float(getattr(settings, "WRITING_RL_HEALTHZ_PING_TIMEOUT_S", 1.0))
    timeout = timeout_s

    def probe() -> dict[str, Any]:
        with app.connection_for_write(url=_broker_url()) as conn:
            replies = app.control.inspect(timeout=timeout, connection=conn).active_queues() or {}
        queues: dict[str, list[str]] = {}
        for name, consumed in sorted(replies.items()):
            for queue in consumed or []:
                queues.setdefault(str(queue.get("name", "")), []).append(name)
        workers = sorted(replies)
        if not workers:
            raise RuntimeError(f"{NO_WORKER} within {timeout:g} s")
        return {"count": len(workers), "names": workers, "queues": queues}

    return _timed(probe)


@dataclass(frozen=True)
class ServedQueues:
    """Which queues live workers consume, from the cached worker check: ``queues`` maps a
    queue to the workers serving it; ``known`` is False (and ``error`` says why) when the
    broker or the check failed, so nobody can tell."""

    known: bool
    queues: dict[str, list[str]]
    error: str = ""


def served_queues() -> ServedQueues:
    """The queues live workers serve, for pages that say what a queued job waits for. Uses the
    same cached answer as ``/healthz`` (``WRITING_RL_HEALTHZ_CACHE_S``); a dead broker is not
    pinged through."""
    broker = check_broker()
    if not broker.ok:
        return ServedQueues(False, {}, f"the broker is unreachable ({broker.error})")
    workers = check_workers_cached()
    if workers.ok:
        return ServedQueues(True, dict(workers.detail.get("queues", {})))
    if NO_WORKER in workers.error:
        return ServedQueues(True, {})
    return ServedQueues(False, {}, workers.error)


_RUNNERS: dict[str, Callable[[], CheckResult]] = {
    "database": check_database,
    "broker": check_broker,
    "workers": check_workers_cached,
}


def run_checks(names: Iterable[str] = CHECKS) -> dict[str, CheckResult]:
    """Run the named checks (unknown names raise ValueError listing the known ones)."""
    names = sorted(set(names), key=CHECKS.index) if set(names) <= set(CHECKS) else list(names)
    unknown = [name for name in names if name not in _RUNNERS]
    if unknown:
        raise ValueError(
            f"unknown health check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}"
        )
    results: dict[str, CheckResult] = {}
    for name in names:
        broker = results.get("broker")
        if name == "workers" and broker is not None and not broker.ok:
            # A ping through a dead broker would only wait on reconnects.
            results[name] = CheckResult(False, 0.0, error="skipped: the broker is unreachable")
        else:
            results[name] = _RUNNERS[name]()
    return results
