"""Housekeeping tasks: a ping that proves a worker is alive on a given queue, and the
periodic sweep that hands every background job whose worker or message was lost to a live
worker."""

from __future__ import annotations

import importlib
import logging
import os
import socket
from typing import Any

from celery import shared_task

log = logging.getLogger(__name__)

RECOVER_LOST_WORK_TASK = "workers.tasks.system.recover_lost_work"


@shared_task(name="workers.tasks.system.ping")
def ping(payload: dict[str, object] | None = None) -> dict[str, object]:
    """Echo ``payload`` with the worker's host and pid, so a caller can tell a real worker
    process answered (not the caller itself in eager mode)."""
    return {"payload": payload or {}, "hostname": socket.gethostname(), "pid": os.getpid()}


def job_kinds() -> list[Any]:
    """Every kind of background job the sweep covers (see ``webapp.studio.services.leases``)."""
    from webapp.studio.services.pipeline import JOB_KIND
    from webapp.studio.services.runs import RUN_KIND

    kinds = [RUN_KIND, JOB_KIND]
    for module in ("webapp.evals.services.jobs", "webapp.annotation.services.jobs"):
        kinds.extend(importlib.import_module(module).JOB_KINDS)
    return kinds


@shared_task(name=RECOVER_LOST_WORK_TASK, ignore_result=True)
def recover_lost_work() -> dict[str, dict[str, list[int]]]:
    """Run by Celery beat every ``WRITING_RL_STALE_SWEEP_S`` seconds: sends again the task of
    each job whose worker was lost or whose message may be lost, of every kind (see
    :mod:`webapp.studio.services.leases`). One kind's failure does not skip the others."""
    from webapp.studio.services.leases import sweep_kind

    report: dict[str, dict[str, list[int]]] = {}
    for kind in job_kinds():
        try:
            sweep = sweep_kind(kind)
        except Exception:
            log.exception("sweep of %s failed; the other kinds go on", kind.name)
            continue
        if sweep.requeued or sweep.cancelled or sweep.resent or sweep.failed:
            log.warning(
                "%s: worker lost, sent again %s; message maybe lost, sent again %s; "
                "marked cancelled %s; send failed (next pass) %s",
                kind.name, sweep.requeued, sweep.resent, sweep.cancelled, sweep.failed,
            )  # fmt: skip
        report[kind.name] = {
            "requeued": sweep.requeued,
            "resent": sweep.resent,
            "cancelled": sweep.cancelled,
            "failed": sweep.failed,
        }
    return report
