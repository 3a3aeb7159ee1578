"""Housekeeping tasks: a ping that proves a worker is alive on a given queue."""

from __future__ import annotations

import os
import socket

from celery import shared_task


@shared_task(name="workers.tasks.system.ping")
def ping(payload: dict[str, object] | None = None) -> dict[str, object]:
    """Echo ``payload`` with the worker's host and pid, so a caller can tell a real worker
    process answered (not the caller itself in eager mode)."""
    return {"payload": payload or {}, "hostname": socket.gethostname(), "pid": os.getpid()}
