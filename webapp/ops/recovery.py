"""The periodic sweep (Celery beat, every ``WRITING_RL_STALE_SWEEP_S`` seconds) that sends
again the task of each background job whose worker was lost or whose message may be lost, of
every kind (see :mod:`webapp.studio.services.leases`).

It lives in ops because it spans the apps: each app declares its kinds of job (the studio's
runs and pipeline jobs; ``JOB_KINDS`` of the evals and annotation services).
"""

from __future__ import annotations

import logging

from webapp.annotation.services import jobs as annotation_jobs
from webapp.evals.services import jobs as evals_jobs
from webapp.studio.services.leases import JobKind, sweep_kind
from webapp.studio.services.pipeline import JOB_KIND, dependents_release
from webapp.studio.services.runs import RUN_KIND

log = logging.getLogger(__name__)


def job_kinds() -> list[JobKind]:
    """Every kind of background job the sweep covers."""
    return [RUN_KIND, JOB_KIND, *evals_jobs.JOB_KINDS, *annotation_jobs.JOB_KINDS]


def lost_work_recover() -> dict[str, dict[str, list[int]]]:
    """Sweep every kind; one kind's failure does not skip the others. Returns, per kind, what
    was sent again, marked cancelled, or could not be sent (the next pass tries again)."""
    report: dict[str, dict[str, list[int]]] = {}
    try:
        # Chained pipeline jobs whose inputs ended but which still wait (the worker that
        # finished the input was lost before it moved them on): queued (sent below, with
        # the other queued jobs, if this send fails), failed or cancelled.
        released = dependents_release()
    except Exception:
        log.exception("release of waiting pipeline jobs failed; the kinds go on")
    else:
        if any(released.values()):
            log.warning("waiting pipeline jobs whose inputs ended: %s", released)
        report["waiting pipeline job"] = released
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
