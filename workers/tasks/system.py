"""Housekeeping tasks: a ping that proves a worker is alive on a given queue, and the
periodic sweep that hands runs whose worker was lost to a live worker."""

from __future__ import annotations

import logging
import os
import socket

from celery import shared_task

log = logging.getLogger(__name__)

RECOVER_STALE_RUNS_TASK = "workers.tasks.system.recover_stale_runs"


@shared_task(name="workers.tasks.system.ping")
def ping(payload: dict[str, object] | None = None) -> dict[str, object]:
    """Echo ``payload`` with the worker's host and pid, so a caller can tell a real worker
    process answered (not the caller itself in eager mode)."""
    return {"payload": payload or {}, "hostname": socket.gethostname(), "pid": os.getpid()}


@shared_task(name=RECOVER_STALE_RUNS_TASK, ignore_result=True)
def recover_stale_runs() -> dict[str, list[int]]:
    """Run by Celery beat every ``WRITING_RL_STALE_SWEEP_S`` seconds: see
    :func:`webapp.studio.services.runs.runs_recover_stale`."""
    from webapp.studio.services.runs import runs_recover_stale

    sweep = runs_recover_stale()
    if sweep.requeued or sweep.cancelled:
        log.warning(
            "runs whose worker was lost: sent again %s, marked cancelled %s",
            sweep.requeued,
            sweep.cancelled,
        )
    return {"requeued": sweep.requeued, "cancelled": sweep.cancelled}
