"""Housekeeping tasks: a ping that proves a worker is alive on a given queue, and the
periodic sweep that hands runs and pipeline jobs whose worker was lost to a live worker."""

from __future__ import annotations

import logging
import os
import socket

from celery import shared_task

log = logging.getLogger(__name__)

RECOVER_LOST_WORK_TASK = "workers.tasks.system.recover_lost_work"


@shared_task(name="workers.tasks.system.ping")
def ping(payload: dict[str, object] | None = None) -> dict[str, object]:
    """Echo ``payload`` with the worker's host and pid, so a caller can tell a real worker
    process answered (not the caller itself in eager mode)."""
    return {"payload": payload or {}, "hostname": socket.gethostname(), "pid": os.getpid()}


@shared_task(name=RECOVER_LOST_WORK_TASK, ignore_result=True)
def recover_lost_work() -> dict[str, dict[str, list[int]]]:
    """Run by Celery beat every ``WRITING_RL_STALE_SWEEP_S`` seconds: sends the task of each
    run and pipeline job whose worker was lost to a live worker (see
    :mod:`webapp.studio.services.leases`)."""
    from webapp.studio.services.pipeline import jobs_recover_stale
    from webapp.studio.services.runs import runs_recover_stale

    report = {}
    for kind, sweep in (("runs", runs_recover_stale()), ("jobs", jobs_recover_stale())):
        if sweep.requeued or sweep.cancelled:
            log.warning(
                "%s whose worker was lost: sent again %s, marked cancelled %s",
                kind,
                sweep.requeued,
                sweep.cancelled,
            )
        report[kind] = {"requeued": sweep.requeued, "cancelled": sweep.cancelled}
    return report
