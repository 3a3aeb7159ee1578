"""Housekeeping tasks: a ping that proves a worker is alive on a given queue (``/healthz``,
the tests), and the beat sweep that hands every background job whose worker or message was
lost to a live worker."""

from __future__ import annotations

import os
import socket

from celery import shared_task

from webapp.ops.recovery import lost_work_recover
from workers.queues import TaskName


@shared_task(name=TaskName.PING.value)
def ping(payload: dict[str, object] | None = None) -> dict[str, object]:
    """Echo ``payload`` with the worker's host and pid, so a caller can tell a real worker
    process answered (not the caller itself in eager mode)."""
    return {"payload": payload or {}, "hostname": socket.gethostname(), "pid": os.getpid()}


@shared_task(name=TaskName.RECOVER_LOST_WORK.value, ignore_result=True)
def recover_lost_work() -> dict[str, dict[str, list[int]]]:
    """Run by Celery beat: send again the task of each job whose worker or message was lost."""
    return lost_work_recover()
