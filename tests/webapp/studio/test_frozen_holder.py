"""A holder frozen inside a fenced write (SIGSTOP, a hung host) keeps its job row locked: the
sweep skips locked rows and a takeover's claim would wait on the lock. Worker sessions are
therefore ended by PostgreSQL once idle in a transaction (webapp/ops/db_sessions.py); the
job is then taken over, and the holder, when it wakes, finds its session gone and stops with
``LeaseLost``, having written nothing of that transaction.

The frozen holder is a thread parked inside ``Lease.fenced()`` on its own connection; the
real-process version (SIGSTOP) is in tests/faults/."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from tests.services import require_postgres
from tests.webapp.studio.factories import make_run
from webapp.ops.db_sessions import bound_idle_transactions, idle_transaction_timeout_ms
from webapp.studio.models import Run
from webapp.studio.services.leases import STALE_AFTER, Lease, LeaseLost, sweep_kind
from webapp.studio.services.runs import RUN_KIND, run_claim

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def timeout() -> Iterator[Callable[[float], int]]:
    """Turn the workers' idle-in-transaction timeout on in this process; off again after."""
    require_postgres()
    yield bound_idle_transactions
    bound_idle_transactions(0)
    connections.close_all()


class Frozen(threading.Thread):
    """A holder that writes inside ``lease.fenced()``, then freezes there until woken, then
    tries one more write in the same transaction."""

    def __init__(self, lease: Lease, run_id: int) -> None:
        super().__init__(daemon=True)
        self.lease, self.run_id = lease, run_id
        self.inside, self.wake = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.lease.fenced():
                Run.objects.filter(pk=self.run_id).update(current_step=5)
                self.inside.set()
                self.wake.wait(60)
                Run.objects.filter(pk=self.run_id).update(current_step=6)
        except BaseException as error:  # the test reads it
            self.error = error
        finally:
            self.inside.set()
            connection.close()

    def thaw(self) -> BaseException | None:
        self.wake.set()
        self.join(30)
        assert not self.is_alive()
        return self.error


def frozen_holder() -> tuple[Run, Frozen]:
    """A run claimed by worker "frozen", now parked inside a fenced write."""
    run = make_run()
    holder = run_claim(run.pk, worker="frozen")
    assert holder is not None
    frozen = Frozen(holder, run.pk)
    frozen.start()
    assert frozen.inside.wait(10)
    return run, frozen


def sweep(sent: list[int]) -> list[int]:
    """A sweep as beat runs it, seen from when the holder's heartbeat is long stale."""
    kind = dataclasses.replace(RUN_KIND, send=lambda row: sent.append(row.pk))
    return sweep_kind(kind, now=timezone.now() + 2 * STALE_AFTER).requeued


def session_ended(frozen: Frozen, within_s: float = 20) -> bool:
    """Poll until a takeover's write no longer waits on the frozen holder's row lock."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with transaction.atomic():
            free = Run.objects.filter(pk=frozen.run_id).select_for_update(skip_locked=True)
            if free.exists():
                return True
        time.sleep(0.2)
    return False


def test_without_the_timeout_a_frozen_holder_keeps_its_job_from_every_sweep(
    timeout: Callable[[float], int],
) -> None:
    assert timeout(0) == 0
    run, frozen = frozen_holder()
    sent: list[int] = []
    time.sleep(1.5)
    assert sweep(sent) == [] and sent == []  # locked: skipped, however stale
    assert frozen.thaw() is None  # it was never taken over: its writes go through
    run.refresh_from_db()
    assert (run.current_step, run.epoch, run.claimed_by) == (6, 1, "frozen")


def test_a_holder_frozen_inside_a_fenced_write_is_taken_over_and_writes_nothing_after(
    timeout: Callable[[float], int],
) -> None:
    assert timeout(1) == 1000
    run, frozen = frozen_holder()
    assert session_ended(frozen), "PostgreSQL did not end the frozen session"
    sent: list[int] = []
    assert sweep(sent) == [run.pk] and sent == [run.pk]
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - 2 * STALE_AFTER)
    rescuer = run_claim(run.pk, worker="rescuer")
    assert rescuer is not None and rescuer.token == 2
    error = frozen.thaw()
    assert isinstance(error, LeaseLost), repr(error)
    assert isinstance(error.__cause__, DatabaseError)
    run.refresh_from_db()
    # The frozen transaction rolled back (its first write too); the rescuer holds the run.
    assert (run.current_step, run.epoch, run.claimed_by) == (0, 2, "rescuer")
    rescuer.update(current_step=1)
    run.refresh_from_db()
    assert run.current_step == 1


def test_a_holder_woken_before_any_takeover_fails_with_the_database_error(
    timeout: Callable[[float], int],
) -> None:
    """Its session ended but nobody took the job: the lease is still its own, so the error is
    the database's (the job fails and says why), not a LeaseLost that would stop it silently."""
    timeout(1)
    run, frozen = frozen_holder()
    assert session_ended(frozen)
    error = frozen.thaw()
    assert isinstance(error, DatabaseError) and not isinstance(error, LeaseLost), repr(error)
    assert "idle-in-transaction" in str(error) or "terminat" in str(error), str(error)
    frozen.lease.update(current_step=2)  # still its lease: a later write on a new session works
    run.refresh_from_db()
    assert (run.current_step, run.epoch) == (2, 1)


def test_only_sessions_opened_after_it_get_the_timeout(timeout: Callable[[float], int]) -> None:
    def shown() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW idle_in_transaction_session_timeout")
            row: Any = cursor.fetchone()
        return str(row[0])

    assert idle_transaction_timeout_ms() == 0
    assert shown() == "0"
    timeout(2.5)
    assert idle_transaction_timeout_ms() == 2500
    assert shown() == "2500ms"  # the open connection was closed; the new one has it
    timeout(0)
    assert shown() == "0"
