"""Worker database sessions that cannot hold a job's row lock forever.

Every fenced write of a background job (:meth:`~webapp.studio.services.leases.Lease.fenced`)
locks the job's row until its transaction commits. A worker frozen inside that transaction
(SIGSTOP, a hung host, a swapped-out process) would keep the lock: the recovery sweep skips
locked rows and a takeover's claim waits on the lock, so the job would stay stuck for as long
as the worker stays frozen. Worker processes therefore ask PostgreSQL to end any of their
sessions left idle inside a transaction for ``WRITING_RL_IDLE_TX_TIMEOUT_S``: the frozen
transaction rolls back (nothing of it is written), the lock goes, and the job is taken over once
its heartbeat is stale. When the frozen worker wakes, its next statement fails on the ended
session; :meth:`Lease.fenced` reconnects, finds the lease gone and raises ``LeaseLost``.

Only workers opt in (:func:`bound_idle_transactions`, called when a Celery worker starts): a web
request or a test never sits idle inside a transaction on purpose, but a test's whole body may
run inside one.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

log = logging.getLogger(__name__)

_timeout_ms = 0


def idle_transaction_timeout_ms() -> int:
    """The timeout this process's new PostgreSQL sessions get (0: none)."""
    return _timeout_ms


def bound_idle_transactions(seconds: float | None = None) -> int:
    """From now on, every new PostgreSQL session of this process is ended by the server once it
    sits idle inside a transaction for ``seconds`` (default ``WRITING_RL_IDLE_TX_TIMEOUT_S``;
    0 turns it off). Open connections are closed so that the next query gets the setting.
    Returns the timeout in milliseconds."""
    global _timeout_ms
    if seconds is None:
        seconds = settings.WRITING_RL_IDLE_TX_TIMEOUT_S
    _timeout_ms = max(int(seconds * 1000), 0)
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()
    if _timeout_ms:
        log.info("database sessions idle in a transaction end after %d ms", _timeout_ms)
    return _timeout_ms


def _on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if _timeout_ms and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET idle_in_transaction_session_timeout = {int(_timeout_ms)}")


connection_created.connect(_on_connection_created, dispatch_uid="writing_rl_idle_transactions")
