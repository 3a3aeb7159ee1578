"""The heartbeat a worker writes while it holds a long task's row (a run, a pipeline job)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

HEARTBEAT_S = float(os.environ.get("WRITING_RL_HEARTBEAT_S", "20"))


def worker_name(task_id: str | None = None) -> str:
    """Who holds a row: host, process and task, as stored in ``claimed_by``."""
    return f"{socket.gethostname()}:{os.getpid()}:{task_id or 'inline'}"


class Heartbeat(threading.Thread):
    """Calls ``beat()`` every ``HEARTBEAT_S`` seconds until stopped, independent of how long
    the work's own steps take; a failing beat is logged, not raised. Use it as a context
    manager around the work."""

    def __init__(self, name: str, beat: Callable[[], object]) -> None:
        super().__init__(name=f"heartbeat-{name}", daemon=True)
        self.beat = beat
        self.done = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.done.wait(HEARTBEAT_S):
                try:
                    self.beat()
                except Exception:
                    log.exception("%s failed", self.name)
                    # A broken connection is not reopened outside a request or task: drop it
                    # so the next beat connects again.
                    connection.close()
        finally:
            connection.close()

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.done.set()
        self.join(timeout=5)
